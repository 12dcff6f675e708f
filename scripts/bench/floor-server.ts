/**
 * The floor: what the machine does with no framework at all. A bare node:http server that reads the
 * request body and answers a small JSON body; for the JWT scenarios it signs (or verifies) a token of
 * the same shape as ours with node:crypto alone. Whatever a real server does costs at least this.
 *
 * Routes (any method): `/jwt/RS256` and `/jwt/ES256` sign an access token; `/introspect-jwt` verifies
 * the `token` form field (an RS256 token this process signed); `/revoke` answers 200 with no body;
 * anything else answers `{"ok":true}`. PORT names the port; it listens on 127.0.0.1 only.
 */
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const keys = {
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
} as const;
type Alg = keyof typeof keys;

const base64url = (value: string) => Buffer.from(value).toString('base64url');
// ECDSA signatures in a JWS are r || s, not the DER node:crypto defaults to.
const keyFor = (alg: Alg, key: KeyObject) => (alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key);

function signAccessToken(alg: Alg): string {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg, typ: 'at+jwt', kid: alg }));
  const payload = base64url(
    JSON.stringify({
      iss: issuer,
      sub: 'bench-client',
      aud: 'https://floor.bench.test/',
      exp: now + 300,
      iat: now,
      jti: randomBytes(16).toString('base64url'),
      client_id: 'bench-client',
      scope: 'bench:read',
    }),
  );
  const input = `${header}.${payload}`;
  return `${input}.${sign('sha256', Buffer.from(input), keyFor(alg, keys[alg].privateKey)).toString('base64url')}`;
}

function introspect(token: string): Record<string, unknown> {
  const [header, payload, signature] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined) return { active: false };
  const genuine = verify('sha256', Buffer.from(`${header}.${payload}`), keys.RS256.publicKey, Buffer.from(signature, 'base64url'));
  if (!genuine) return { active: false };
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { exp: number };
  return claims.exp > Date.now() / 1000 ? { active: true, ...claims, token_type: 'Bearer' } : { active: false };
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function route(req: IncomingMessage, res: ServerResponse, body: string): void {
  switch (req.url) {
    case '/jwt/RS256':
    case '/jwt/ES256':
      answer(res, 200, { access_token: signAccessToken(req.url.slice(5) as Alg), token_type: 'Bearer', expires_in: 300, scope: 'bench:read' });
      return;
    case '/introspect-jwt':
      answer(res, 200, introspect(new URLSearchParams(body).get('token') ?? ''));
      return;
    case '/revoke':
      answer(res, 200, undefined);
      return;
    default:
      answer(res, 200, { ok: true });
  }
}

const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => route(req, res, body));
});
server.listen(port, '127.0.0.1', () => console.log(`floor listening on port ${port}`));
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
