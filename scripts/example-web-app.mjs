// A web app that signs people in with the login server: authorization code flow with PKCE, the ID
// token validated, userinfo called, all by openid-client. It shows what it learned as JSON.
//
//   ISSUER=http://localhost:3000 CLIENT_ID=... CLIENT_SECRET=... node scripts/example-web-app.mjs
//   then open http://localhost:4000/
//
// Register it first (docs/integrating-apps.md, "A runnable example"): a confidential client with
// redirect_uris ["http://localhost:4000/callback"] and grant_types ["authorization_code"].
import { createServer } from 'node:http';
import * as client from 'openid-client';

const issuer = new URL(process.env.ISSUER ?? 'http://localhost:3000');
const port = Number(process.env.PORT ?? 4000);
const redirectUri = `http://localhost:${port}/callback`;

const config = await client.discovery(
  issuer,
  process.env.CLIENT_ID,
  process.env.CLIENT_SECRET,
  undefined,
  // Plain HTTP only for a local server; in production the issuer is https.
  issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined,
);

// state -> what the callback must check. A real app keeps this in the person's session cookie.
const pending = new Map();

async function signIn(res) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  pending.set(state, { verifier, nonce });
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  res.writeHead(302, { location: url.href }).end();
}

async function callback(url, res) {
  const state = url.searchParams.get('state');
  const checks = pending.get(state);
  pending.delete(state);
  if (!checks) return res.writeHead(400, { 'content-type': 'text/plain' }).end('unknown or used state: start again at /');
  try {
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: checks.verifier,
      expectedState: state,
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id_token_claims: claims, userinfo }, null, 2));
  } catch (error) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`sign-in failed: ${error.error ?? error.message}`);
  }
}

createServer((req, res) => {
  const url = new URL(req.url, `http://localhost:${port}`);
  if (url.pathname === '/') return void signIn(res);
  if (url.pathname === '/callback') return void callback(url, res);
  res.writeHead(404).end();
}).listen(port, () => console.log(`Example web app on http://localhost:${port}/`));
