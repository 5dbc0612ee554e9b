// The web client's small pure modules (web/src/lib): names.js (name and
// password rules, cids, avatars), time.js (day labels, grouping), codec.js
// (bytes <-> frame).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFrame, encodeFrame } from '../../web/src/lib/codec.js';
import { checkPassword, checkUserName, initials, isGroupName, isUserName, nameHue, newCid, normalizeGroupName } from '../../web/src/lib/names.js';
import { dayLabel, formatTime, groupByDay, shortStamp } from '../../web/src/lib/time.js';

describe('names', () => {
    it('accepts the contract alphabet and lengths only', () => {
        assert.equal(isUserName('alice_1.b-c'), true);
        assert.equal(isUserName('a'.repeat(32)), true);
        assert.equal(isUserName('a'.repeat(33)), false);
        assert.equal(isUserName('Alice'), false);
        assert.equal(isUserName(''), false);
        assert.equal(isUserName('a b'), false);
        assert.equal(isGroupName('#team'), true);
        assert.equal(isGroupName('team'), false);
        assert.equal(isGroupName('#'), false);
    });
    it('explains refusals', () => {
        assert.match(checkUserName(''), /Enter/);
        assert.match(checkUserName('A!'), /lower-case/);
        assert.match(checkUserName('x'.repeat(40)), /32/);
        assert.equal(checkUserName('bob'), '');
        assert.match(checkPassword('short'), /at least 8/);
        assert.match(checkPassword('x'.repeat(1025)), /1024/);
        assert.equal(checkPassword('ééééé'), ''); // 10 bytes
        assert.equal(checkPassword('long enough'), '');
    });
    it('normalizes group names', () => {
        assert.equal(normalizeGroupName(' Team '), '#team');
        assert.equal(normalizeGroupName('#ops'), '#ops');
        assert.equal(normalizeGroupName('no way'), '');
    });
    it('makes cids within 1..64 chars, different each time', () => {
        const a = newCid();
        const b = newCid();
        assert.notEqual(a, b);
        assert.ok(a.length > 0);
        assert.ok(a.length <= 64);
    });
    it('avatars: stable hue and initials', () => {
        assert.equal(nameHue('alice'), nameHue('alice'));
        assert.notEqual(nameHue('alice'), nameHue('bob'));
        assert.equal(initials('mary_jane'), 'MJ');
        assert.equal(initials('bob'), 'BO');
        assert.equal(initials('#team'), 'TE');
    });
});

describe('time', () => {
    const now = new Date(2026, 10, 26, 15, 30).getTime();
    it('labels days', () => {
        assert.equal(dayLabel(new Date(2026, 10, 26, 1, 0).getTime(), now), 'Today');
        assert.equal(dayLabel(new Date(2026, 10, 25, 23, 59).getTime(), now), 'Yesterday');
        assert.equal(dayLabel(new Date(2026, 2, 3, 12).getTime(), now), 'Tue 3 Mar');
        assert.equal(dayLabel(new Date(2024, 2, 3, 12).getTime(), now), '3 Mar 2024');
        assert.equal(shortStamp(new Date(2026, 10, 26, 9, 5).getTime(), now), '09:05');
        assert.equal(shortStamp(0, now), '');
        assert.equal(formatTime(new Date(2026, 0, 1, 7, 3).getTime()), '07:03');
    });
    it('groups messages by day for separators', () => {
        const t = (d, h) => new Date(2026, 10, d, h).getTime();
        const g = groupByDay([{ sent: t(24, 9) }, { sent: t(25, 9) }, { sent: t(25, 22) }, { sent: t(26, 1) }], now);
        assert.deepEqual(
            g.map((x) => [x.label, x.items.length]),
            [
                ['Tue 24 Nov', 1],
                ['Yesterday', 2],
                ['Today', 1],
            ],
        );
    });
});

describe('codec', () => {
    it('round-trips a frame; integers stay integers', () => {
        const f = { kind: 'read', with: 'bob', upto: 123456789 };
        assert.deepEqual(decodeFrame(encodeFrame(f)), f);
        const bytes = encodeFrame({ kind: 'x', n: 5 });
        assert.ok(Array.from(bytes).includes(5)); // positive fixint, not a float
    });
    it('returns null for what is not a frame, never throws', () => {
        assert.equal(decodeFrame(new Uint8Array([0xc1])), null);
        assert.equal(decodeFrame(encodeFrame([1, 2])), null);
        assert.equal(decodeFrame(encodeFrame({ no: 'kind' })), null);
        assert.equal(decodeFrame(encodeFrame({ kind: 7 })), null);
        assert.deepEqual(decodeFrame(encodeFrame({ kind: 'a' }).slice().buffer), { kind: 'a' });
    });
});
