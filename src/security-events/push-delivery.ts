/**
 * Push delivery of SETs (RFC 8935): each event queued for a resource server that registered an
 * `events_endpoint` is POSTed there (`Content-Type: application/secevent+jwt`, its bearer credential),
 * in the background, by the instance that queued it. A 202 acknowledges it (it leaves the queue);
 * anything else (an error status, a redirect, which is never followed, a timeout, a refused address)
 * is retried with exponential backoff a bounded number of times, then given up: the event stays in the
 * queue, where the resource server polls it (RFC 8936), so nothing is lost.
 *
 * Where SETs may go, as for back-channel logout (issuer/backchannel-logout.ts): public addresses;
 * loopback too outside production; private and other special-use addresses only when the operator
 * allows them (`EVENTS_PUSH_PRIVATE_NETWORKS`). The address is checked when the connection is made
 * (the lookup of the request itself), so a name that resolves elsewhere later cannot slip through.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

/** Where SETs may be pushed. */
export interface PushDeliveryPolicy {
  /** Outside production: loopback addresses are allowed (test receivers, local development). */
  readonly allowLoopback: boolean;
  /** The operator allows private and other special-use addresses. */
  readonly allowPrivateNetworks: boolean;
}

/** Pauses before each retry (ms): 5 attempts within about 8 s, plus their timeouts. */
export const PUSH_RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000] as const;
/** How long one attempt may take, connection included. */
export const PUSH_TIMEOUT_MS = 3_000;
/** At most this much of an answer is read (an error body is only logged by its status). */
const MAX_ANSWER_BYTES = 4096;

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Special-use addresses (RFC 6890 and successors): private, link-local, documentation, multicast, ... */
const SPECIAL_USE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  SPECIAL_USE.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  // Not ::ffff:0:0/96 (IPv4-mapped) nor 64:ff9b::/96 (NAT64): a BlockList matches IPv4 addresses
  // against such ranges too, which would refuse every IPv4 address. Mapped addresses are judged as
  // the IPv4 address they carry (addressAllowed).
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  SPECIAL_USE.addSubnet(network, prefix, 'ipv6');
}

/** Whether `policy` lets SETs go to `address` (an IP address). */
export function addressAllowed(address: string, policy: PushDeliveryPolicy): boolean {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it is.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return addressAllowed(mapped, policy);
  if (policy.allowLoopback && LOOPBACK.check(address, family)) return true;
  if (policy.allowPrivateNetworks) return true;
  return !SPECIAL_USE.check(address, family);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http(s).request that resolves as usual and refuses addresses the policy does not allow. */
function guardedLookup(policy: PushDeliveryPolicy) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const refused = addresses.find((entry) => !addressAllowed(entry.address, policy));
      if (refused) {
        const failure: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${refused.address}, an address SETs may not be pushed to`);
        failure.code = 'EADDRNOTALLOWED';
        return callback(failure, []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/**
 * POSTs one SET to `endpoint`; resolves with the answer's status (redirects are not followed), rejects
 * on a network failure, a refused address or a timeout.
 */
export function postSet(endpoint: URL, set: string, bearer: string | undefined, policy: PushDeliveryPolicy): Promise<number> {
  const options: RequestOptions = {
    method: 'POST',
    headers: {
      'content-type': 'application/secevent+jwt',
      accept: 'application/json',
      'content-length': Buffer.byteLength(set),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    lookup: guardedLookup(policy),
    signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
  };
  // An address literal is connected to without a lookup: it is judged here.
  const literal = endpoint.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) !== 0 && !addressAllowed(literal, policy)) {
    return Promise.reject(new Error(`${literal} is an address SETs may not be pushed to`));
  }
  return new Promise((resolve, reject) => {
    const request = (endpoint.protocol === 'https:' ? httpsRequest : httpRequest)(endpoint, options, (response) => {
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_ANSWER_BYTES) response.destroy();
      });
      response.on('close', () => resolve(response.statusCode ?? 0));
      response.on('error', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end(set);
  });
}
