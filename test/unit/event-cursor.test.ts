/**
 * The poll endpoint's cursors: opaque, made and read back by the server, one spelling per position;
 * anything else (malformed, another version, not canonical) is refused, and `""` is the start.
 */
import { describe, expect, it } from '@jest/globals';
import { decodeCursor, encodeCursor, isAfter } from '../../src/security-events/event-cursor.js';

describe('event cursors', () => {
  it('read back the position they were made of, and "" is before every event', () => {
    const position = { score: 1_764_496_744_123, setId: 'Zq3-_x9AbCdEfGhIjKlMnOpQrStUvWxY' };
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
    expect(decodeCursor('')).toBeNull();
  });

  it.each([
    ['not base64url', 'a+b/c='],
    ['padded', `${encodeCursor({ score: 1, setId: 'a' })}=`],
    ['another version', Buffer.from('2.1.abc').toString('base64url')],
    ['no SET id', Buffer.from('1.1.').toString('base64url')],
    ['a score that is not a whole number', Buffer.from('1.1.5.abc').toString('base64url')],
    ['a leading zero', Buffer.from('1.01.abc').toString('base64url')],
    ['a score past the safe integers', Buffer.from('1.99999999999999999.abc').toString('base64url')],
    ['characters no SET id has', Buffer.from('1.1.a b').toString('base64url')],
    ['too long', encodeCursor({ score: 1, setId: 'a'.repeat(256) }) + 'AAAA'],
    ['JSON', Buffer.from('{"score":1,"setId":"a"}').toString('base64url')],
  ])('refuse what the server did not make: %s', (_, cursor) => {
    expect(decodeCursor(cursor)).toBeUndefined();
  });

  it('order events by score, then by SET id byte-wise', () => {
    const position = { score: 10, setId: 'm' };
    expect(isAfter(11, 'a', position)).toBe(true);
    expect(isAfter(9, 'z', position)).toBe(false);
    expect(isAfter(10, 'n', position)).toBe(true);
    expect(isAfter(10, 'm', position)).toBe(false);
    expect(isAfter(10, 'M', position)).toBe(false);
    expect(isAfter(0, '', null)).toBe(true);
  });
});
