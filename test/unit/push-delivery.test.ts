/**
 * Where SETs may be pushed (RFC 8935): public addresses always; loopback only outside production;
 * private and other special-use addresses only when the operator allows them. Checked on a real
 * receiver on loopback: a refused push never reaches it, by address or by a name resolving to it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { addressAllowed, postSet, type PushDeliveryPolicy } from '../../src/security-events/push-delivery.js';

const production: PushDeliveryPolicy = { allowLoopback: false, allowPrivateNetworks: false };
const development: PushDeliveryPolicy = { allowLoopback: true, allowPrivateNetworks: false };
const intranet: PushDeliveryPolicy = { allowLoopback: false, allowPrivateNetworks: true };

let receiver: Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    hits++;
    req.resume();
    req.on('end', () => res.writeHead(202).end());
  });
  receiver.listen(0, '127.0.0.1');
  await new Promise((resolve) => receiver.once('listening', resolve));
  port = (receiver.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

describe('push targets', () => {
  it.each([
    ['93.184.215.14', production, true],
    ['2606:4700::1111', production, true],
    ['127.0.0.1', production, false],
    ['::1', production, false],
    ['::ffff:127.0.0.1', production, false],
    ['10.1.2.3', production, false],
    ['192.168.1.1', production, false],
    ['169.254.169.254', production, false],
    ['fd00::1', production, false],
    ['127.0.0.1', development, true],
    ['::1', development, true],
    ['10.1.2.3', development, false],
    ['10.1.2.3', intranet, true],
    ['169.254.169.254', intranet, true],
  ])('%s under %j: allowed %s', (address, policy, allowed) => {
    expect(addressAllowed(address, policy)).toBe(allowed);
  });

  it('a refused loopback target is never contacted, by address or by name; an allowed one is', async () => {
    const before = hits;
    await expect(postSet(new URL(`http://127.0.0.1:${port}/events`), 'a.b.c', 'credential', production)).rejects.toThrow(/may not be pushed/);
    await expect(postSet(new URL(`http://localhost:${port}/events`), 'a.b.c', 'credential', production)).rejects.toThrow(/may not be pushed/);
    expect(hits).toBe(before);
    expect(await postSet(new URL(`http://localhost:${port}/events`), 'a.b.c', 'credential', development)).toBe(202);
    expect(hits).toBe(before + 1);
  });
});
