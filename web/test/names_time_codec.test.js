import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../src/lib/codec.js';
import { checkPassword, checkUserName, initials, isGroupName, isUserName, nameHue, newCid, normalizeGroupName } from '../src/lib/names.js';
import { dayLabel, formatTime, groupByDay, shortStamp } from '../src/lib/time.js';

describe('names', () => {
    it('accepts the contract alphabet and lengths only', () => {
        expect(isUserName('alice_1.b-c')).toBe(true);
        expect(isUserName('a'.repeat(32))).toBe(true);
        expect(isUserName('a'.repeat(33))).toBe(false);
        expect(isUserName('Alice')).toBe(false);
        expect(isUserName('')).toBe(false);
        expect(isUserName('a b')).toBe(false);
        expect(isGroupName('#team')).toBe(true);
        expect(isGroupName('team')).toBe(false);
        expect(isGroupName('#')).toBe(false);
    });
    it('explains refusals', () => {
        expect(checkUserName('')).toMatch(/Enter/);
        expect(checkUserName('A!')).toMatch(/lower-case/);
        expect(checkUserName('x'.repeat(40))).toMatch(/32/);
        expect(checkUserName('bob')).toBe('');
        expect(checkPassword('short')).toMatch(/at least 8/);
        expect(checkPassword('x'.repeat(1025))).toMatch(/1024/);
        expect(checkPassword('ééééé')).toBe(''); // 10 bytes
        expect(checkPassword('long enough')).toBe('');
    });
    it('normalizes group names', () => {
        expect(normalizeGroupName(' Team ')).toBe('#team');
        expect(normalizeGroupName('#ops')).toBe('#ops');
        expect(normalizeGroupName('no way')).toBe('');
    });
    it('makes cids within 1..64 chars, different each time', () => {
        const a = newCid();
        const b = newCid();
        expect(a).not.toBe(b);
        expect(a.length).toBeGreaterThan(0);
        expect(a.length).toBeLessThanOrEqual(64);
    });
    it('avatars: stable hue and initials', () => {
        expect(nameHue('alice')).toBe(nameHue('alice'));
        expect(nameHue('alice')).not.toBe(nameHue('bob'));
        expect(initials('mary_jane')).toBe('MJ');
        expect(initials('bob')).toBe('BO');
        expect(initials('#team')).toBe('TE');
    });
});

describe('time', () => {
    const now = new Date(2026, 10, 26, 15, 30).getTime();
    it('labels days', () => {
        expect(dayLabel(new Date(2026, 10, 26, 1, 0).getTime(), now)).toBe('Today');
        expect(dayLabel(new Date(2026, 10, 25, 23, 59).getTime(), now)).toBe('Yesterday');
        expect(dayLabel(new Date(2026, 2, 3, 12).getTime(), now)).toBe('Tue 3 Mar');
        expect(dayLabel(new Date(2024, 2, 3, 12).getTime(), now)).toBe('3 Mar 2024');
        expect(shortStamp(new Date(2026, 10, 26, 9, 5).getTime(), now)).toBe('09:05');
        expect(shortStamp(0, now)).toBe('');
        expect(formatTime(new Date(2026, 0, 1, 7, 3).getTime())).toBe('07:03');
    });
    it('groups messages by day for separators', () => {
        const t = (d, h) => new Date(2026, 10, d, h).getTime();
        const g = groupByDay([{ sent: t(24, 9) }, { sent: t(25, 9) }, { sent: t(25, 22) }, { sent: t(26, 1) }], now);
        expect(g.map((x) => [x.label, x.items.length])).toEqual([
            ['Tue 24 Nov', 1],
            ['Yesterday', 2],
            ['Today', 1],
        ]);
    });
});

describe('codec', () => {
    it('round-trips a frame; integers stay integers', () => {
        const f = { kind: 'read', with: 'bob', upto: 123456789 };
        expect(decodeFrame(encodeFrame(f))).toEqual(f);
        const bytes = encodeFrame({ kind: 'x', n: 5 });
        expect(Array.from(bytes)).toContain(5); // positive fixint, not a float
    });
    it('returns null for what is not a frame, never throws', () => {
        expect(decodeFrame(new Uint8Array([0xc1]))).toBe(null);
        expect(decodeFrame(encodeFrame([1, 2]))).toBe(null);
        expect(decodeFrame(encodeFrame({ no: 'kind' }))).toBe(null);
        expect(decodeFrame(encodeFrame({ kind: 7 }))).toBe(null);
        expect(decodeFrame(encodeFrame({ kind: 'a' }).slice().buffer)).toEqual({ kind: 'a' });
    });
});
