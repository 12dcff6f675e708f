/**
 * DPoP as an outside client does it, with oauth4webapi: a key pair and its handle, bound tokens from
 * the client credentials grant, and the headers a client would send to a protected resource.
 */
import { calculateJwkThumbprint, exportJWK } from 'jose';
import * as oauth from 'oauth4webapi';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** A DPoP key of `client`, the handle oauth4webapi signs proofs with, and the key's thumbprint. */
export async function dpopKey(client: oauth.Client) {
  const keyPair = await oauth.generateKeyPair('ES256');
  const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
  return { handle: oauth.DPoP(client, keyPair), jkt, keyPair };
}

/** A client credentials grant, DPoP-bound when `dpop` is given; the access token. */
export async function boundClientCredentials(
  as: oauth.AuthorizationServer,
  client: { client_id: string; client_secret: string },
  params: Record<string, string>,
  dpop?: oauth.DPoPHandle,
): Promise<string> {
  const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(client.client_secret), new URLSearchParams(params), {
    ...insecure,
    ...(dpop ? { DPoP: dpop } : {}),
  });
  return (await oauth.processClientCredentialsResponse(as, client, response)).access_token;
}

/** The `Authorization` and `DPoP` headers oauth4webapi sends for `method url` with `token`, captured instead of sent. */
export async function resourceRequestHeaders(token: string, dpop: oauth.DPoPHandle | undefined, method: string, url: string): Promise<Headers> {
  let captured: Headers | undefined;
  await oauth.protectedResourceRequest(token, method, new URL(url), new Headers(), null, {
    ...insecure,
    ...(dpop ? { DPoP: dpop } : {}),
    [oauth.customFetch]: async (_url: string, init: RequestInit) => {
      captured = new Headers(init.headers);
      return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
    },
  });
  return captured!;
}
