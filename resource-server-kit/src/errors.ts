/**
 * Why a request was refused, and how to tell the caller: RFC 6750 section 3 `WWW-Authenticate`
 * challenges for bearer tokens, RFC 9449 section 7.1 challenges for DPoP.
 */

/** The error codes a refusal carries (RFC 6750 section 3.1, RFC 9449 section 7.1), or `temporarily_unavailable` when the kit cannot tell. */
export type RefusalCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'temporarily_unavailable';

/** The authentication scheme a challenge is written for. */
export type Scheme = 'Bearer' | 'DPoP';

const STATUS: Record<RefusalCode, number> = {
  invalid_request: 400,
  invalid_token: 401,
  invalid_dpop_proof: 401,
  insufficient_scope: 403,
  temporarily_unavailable: 503,
};

/**
 * A request the kit refuses. `code` is undefined when the request carried no credentials at all
 * (RFC 6750 section 3.1: then the challenge names no error). The message is safe to show the caller.
 */
export class AccessDenied extends Error {
  override readonly name = 'AccessDenied';
  /** The HTTP status to answer with. */
  readonly status: number;

  constructor(
    readonly code: RefusalCode | undefined,
    message: string,
    /** The scheme to challenge with: DPoP when the token is bound or came with the DPoP scheme. */
    readonly scheme: Scheme = 'Bearer',
    /** For `insufficient_scope`: the scopes the operation needs. */
    readonly scope?: string,
  ) {
    super(message);
    this.status = code === undefined ? 401 : STATUS[code];
  }
}

/** What a framework adapter sends for a refusal: status, headers and a JSON body. */
export interface Refusal {
  readonly status: number;
  readonly headers: { 'www-authenticate'?: string[]; 'retry-after'?: string; 'cache-control': string };
  readonly body: { error: string; error_description: string };
}

/** How challenges are written. */
export interface ChallengeOptions {
  /** The `realm` of every challenge (RFC 6750 section 3). */
  readonly realm?: string | undefined;
  /** The DPoP proof algorithms accepted, announced in DPoP challenges (`algs`). */
  readonly dpopAlgorithms: readonly string[];
}

// RFC 6750 section 3: error_description is %x20-21 / %x23-5B / %x5D-7E, so no quote or backslash.
const quoted = (value: string): string => `"${value.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' ')}"`;

/**
 * The answer for `error`: its status, the challenges and a JSON body. A request without credentials
 * gets a challenge for each scheme the kit accepts (RFC 9449 section 7.1), naming no error.
 */
export function refusalOf(error: AccessDenied, options: ChallengeOptions): Refusal {
  const realm = options.realm === undefined ? [] : [`realm=${quoted(options.realm)}`];
  const algs = `algs=${quoted(options.dpopAlgorithms.join(' '))}`;
  if (error.code === 'temporarily_unavailable') {
    return {
      status: 503,
      headers: { 'retry-after': '5', 'cache-control': 'no-store' },
      body: { error: error.code, error_description: error.message },
    };
  }
  if (error.code === undefined) {
    return {
      status: 401,
      headers: { 'www-authenticate': [['Bearer', realm.join(', ')].join(' ').trim(), `DPoP ${[...realm, algs].join(', ')}`], 'cache-control': 'no-store' },
      body: { error: 'invalid_request', error_description: error.message },
    };
  }
  const params = [...realm, `error=${quoted(error.code)}`, `error_description=${quoted(error.message)}`];
  if (error.scope !== undefined) params.push(`scope=${quoted(error.scope)}`);
  if (error.scheme === 'DPoP') params.push(algs);
  return {
    status: error.status,
    headers: { 'www-authenticate': [`${error.scheme} ${params.join(', ')}`], 'cache-control': 'no-store' },
    body: { error: error.code, error_description: error.message },
  };
}
