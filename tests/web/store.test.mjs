// The web client's chat state (web/src/lib/store.js): the pure reducer and its
// selectors, driven by server frames and user actions, no socket, no React.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0, frame, helloWith, run } from './lib/frames.mjs';
import {
    conversationList,
    mergeMessages,
    pendingFor,
    readFrame,
    receiptOf,
    reduce,
    resendList,
    syncFrame,
    titleFor,
    totalUnread,
    typingNames,
} from '../../web/src/lib/store.js';

const hello = (o = {}) => helloWith(undefined, o);
let nextId = 100;
const text = (o) => frame({ kind: 'text', id: ++nextId, seq: 1, from: 'bob', to: 'alice', data: 'hi', sent: T0, cid: `c${nextId}`, ...o });

describe('message store: dedupe by id', () => {
    it('keeps each id once whatever path brings it (live, offline push, sync, history)', () => {
        const t = { kind: 'text', id: 7, seq: 3, from: 'bob', to: 'alice', data: 'once', sent: T0, cid: 'x' };
        const s = run([
            hello(),
            frame(t),
            frame({ ...t }), // offline push / sync replay of the same entry
            frame({ kind: 'history', with: 'bob', messages: [t, { ...t, id: 5, data: 'older' }], more: false }, { mode: 'initial' }),
        ]);
        assert.deepEqual(
            s.convs.bob.messages.map((m) => m.id),
            [5, 7],
        );
        assert.equal(s.convs.bob.unread, 1); // counted once
    });

    it('keeps messages sorted by id whatever the arrival order', () => {
        const [list] = mergeMessages([], [{ id: 5 }, { id: 2 }, { id: 9 }, { id: 2 }, { id: 7 }]);
        assert.deepEqual(
            list.map((m) => m.id),
            [2, 5, 7, 9],
        );
        const [same, added] = mergeMessages(list, [{ id: 7 }]);
        assert.equal(same, list); // nothing new: same object (React skips the render)
        assert.deepEqual(added, []);
    });

    it('ignores frames without a valid id', () => {
        const s = run([hello(), text({ id: 'x' }), text({ id: -1 }), text({ id: 1.5 })]);
        assert.deepEqual(s.convs.bob.messages, []);
    });

    it('files a message under the peer for 1:1 and under #name for groups', () => {
        const s = run([hello(), text({ from: 'bob', to: 'alice' }), text({ from: 'alice', to: 'carol' }), text({ from: 'bob', to: '#team' })]);
        assert.equal(s.convs.bob.messages.length, 1);
        assert.equal(s.convs.carol.messages.length, 1);
        assert.equal(s.convs['#team'].messages.length, 1);
        assert.equal(s.convs['#team'].group, true);
    });
});

describe('seq tracking and sync', () => {
    it('a fresh page starts from hello.seq; text and ack seqs raise it', () => {
        let s = run([hello({ seq: 10 })]);
        assert.equal(s.seq, 10);
        assert.equal(syncFrame(s), null); // nothing to recover on a first connect
        s = run([text({ seq: 11 }), text({ seq: 12 })], s);
        assert.equal(s.seq, 12);
        s = run([{ type: 'send', cid: 'k1', to: 'bob', data: 'yo', now: T0 }, frame({ kind: 'ack', cid: 'k1', id: 999, seq: 13, sent: T0 })], s);
        assert.equal(s.seq, 13);
        s = run([text({ seq: 5 })], s); // an older replay never lowers it
        assert.equal(s.seq, 13);
    });

    it('a reconnect keeps its own position and asks sync {after, epoch}', () => {
        let s = run([hello({ seq: 3 }), text({ seq: 4 })]);
        s = run([hello({ seq: 9 })], s); // 5..9 went to a dead session
        assert.equal(s.seq, 4);
        assert.equal(s.syncing, true);
        assert.deepEqual(syncFrame(s), { kind: 'sync', after: 4, epoch: 'e1' });
        s = run([text({ seq: 5 }), text({ seq: 9 }), frame({ kind: 'sync', recovered: true, seq: 9 })], s);
        assert.equal(s.syncing, false);
        assert.equal(s.seq, 9);
        assert.equal(syncFrame(s), null);
    });

    it('an unrecoverable gap (sync recovered:false) reloads conversations through history', () => {
        let s = run([hello({ seq: 3 }), frame({ kind: 'history', with: 'bob', messages: [], more: false })]);
        assert.equal(s.convs.bob.historyLoaded, true);
        s = run([hello({ seq: 3000 }), frame({ kind: 'sync', recovered: false, seq: 3000 })], s);
        assert.equal(s.convs.bob.historyLoaded, false);
        assert.equal(s.seq, 3000);
    });

    it('a new epoch (inbox lost) starts over from hello and reloads history', () => {
        let s = run([hello({ seq: 50 }), frame({ kind: 'history', with: 'bob', messages: [], more: false })]);
        s = run([hello({ seq: 2, epoch: 'e2' })], s);
        assert.equal(s.seq, 2);
        assert.equal(s.epoch, 'e2');
        assert.equal(s.syncing, false);
        assert.equal(s.convs.bob.historyLoaded, false);
    });
});

describe('outbox: sending, sent, failed, retry', () => {
    it('a sent message is pending until its ack, then confirmed with the server id and time', () => {
        let s = run([hello(), { type: 'send', cid: 'c1', to: 'bob', data: 'hello', now: T0 }]);
        assert.deepEqual(
            pendingFor(s, 'bob').map((o) => [o.cid, o.status]),
            [['c1', 'sending']],
        );
        assert.deepEqual(s.convs.bob.preview, { from: 'alice', data: 'hello' });
        s = run([frame({ kind: 'ack', cid: 'c1', id: 42, seq: 1, sent: T0 + 5 })], s);
        assert.deepEqual(pendingFor(s, 'bob'), []);
        assert.deepEqual(s.convs.bob.messages, [{ id: 42, from: 'alice', to: 'bob', data: 'hello', sent: T0 + 5, cid: 'c1' }]);
        assert.equal(receiptOf(s.convs.bob, s.convs.bob.messages[0]), 'sent');
    });

    it('a second ack for the same cid (a retry answered as dup) adds nothing', () => {
        const s = run([
            hello(),
            { type: 'send', cid: 'c1', to: 'bob', data: 'x', now: T0 },
            frame({ kind: 'ack', cid: 'c1', id: 42, seq: 1, sent: T0 }),
            frame({ kind: 'ack', cid: 'c1', id: 42, seq: 1, sent: T0 }),
        ]);
        assert.equal(s.convs.bob.messages.length, 1);
    });

    it('the copy replayed by sync settles a message whose ack was lost', () => {
        const s = run([
            hello(),
            { type: 'send', cid: 'lost-ack', to: 'bob', data: 'x', now: T0 },
            text({ id: 50, seq: 2, from: 'alice', to: 'bob', data: 'x', cid: 'lost-ack' }),
        ]);
        assert.deepEqual(pendingFor(s, 'bob'), []);
        assert.deepEqual(
            s.convs.bob.messages.map((m) => m.id),
            [50],
        );
        assert.equal(s.convs.bob.unread, 0); // own messages are never unread
    });

    it('errors fail the message; transient ones and timeouts are re-sent on reconnect, refusals are not', () => {
        let s = run([
            hello(),
            { type: 'send', cid: 'a', to: 'bob', data: '1', now: T0 },
            { type: 'send', cid: 'b', to: 'bob', data: '2', now: T0 + 1 },
            { type: 'send', cid: 'c', to: 'nobody', data: '3', now: T0 + 2 },
            { type: 'send', cid: 'd', to: 'bob', data: '4', now: T0 + 3 },
            frame({ kind: 'error', code: 'unavailable', message: 'try later', cid: 'a' }),
            frame({ kind: 'error', code: 'no_such_user', message: 'no such user', cid: 'c' }),
            { type: 'timeout', cid: 'd' },
        ]);
        assert.equal(s.outbox.a.status, 'failed');
        assert.equal(s.outbox.c.status, 'failed');
        assert.equal(s.outbox.d.status, 'failed');
        assert.deepEqual(
            resendList(s).map((o) => o.cid),
            ['a', 'b', 'd'],
        ); // oldest first, same cids
        s = run([{ type: 'retry', cid: 'c' }], s);
        assert.equal(s.outbox.c.status, 'sending');
        s = run([{ type: 'discard', cid: 'c' }], s);
        assert.equal(s.outbox.c, undefined);
    });

    it('a timeout after the ack does nothing', () => {
        const s = run([
            hello(),
            { type: 'send', cid: 'a', to: 'bob', data: '1', now: T0 },
            frame({ kind: 'ack', cid: 'a', id: 9, seq: 1, sent: T0 }),
            { type: 'timeout', cid: 'a' },
        ]);
        assert.deepEqual(s.outbox, {});
    });
});

describe('hello pages (users frames)', () => {
    it('merges the entries of users pages after hello like hello entries, previews marked when cut', () => {
        const s = run([
            hello({ more: true }),
            frame({
                kind: 'users',
                users: [{ username: 'carol', online: false, unread: 2, last: { id: 9, from: 'carol', to: 'alice', data: 'abc', sent: T0, truncated: true } }],
                more: true,
            }),
            frame({ kind: 'users', users: [{ username: '#team', online: true, unread: 0, last: null }], more: false }),
        ]);
        assert.deepEqual(Object.keys(s.convs).sort(), ['#team', 'bob', 'carol']);
        assert.equal(s.convs.carol.unread, 2);
        assert.equal(s.convs.carol.online, false);
        assert.deepEqual(s.convs.carol.preview, { from: 'carol', data: 'abc…' });
        assert.equal(s.convs['#team'].online, true);
    });

    it('a name listed twice (a member of two groups, beyond 32 groups) is one conversation; the repeat changes nothing', () => {
        const dan = { username: 'dan', online: true, unread: 1, read: 4, last: { id: 5, from: 'dan', to: 'alice', data: 'yo', sent: T0 } };
        const once = [frame({ kind: 'users', users: [dan], more: false })];
        const twice = [frame({ kind: 'users', users: [dan], more: true }), frame({ kind: 'users', users: [{ ...dan }], more: false })];
        // first hello, and a reconnect that holds dan's message already
        for (const before of [[], [hello(), text({ id: 5, from: 'dan', data: 'yo' })]]) {
            const a = run([...before, hello({ more: true }), ...once]);
            const b = run([...before, hello({ more: true }), ...twice]);
            assert.deepEqual(b.convs.dan, a.convs.dan);
            assert.deepEqual(Object.keys(b.convs).sort(), ['bob', 'dan']);
            assert.equal(b.convs.dan.unread, 1);
        }
    });
});

describe('unread counts, receipts, typing, presence', () => {
    it('hello counts are authoritative; entries up to hello.seq are not counted twice', () => {
        let s = run([hello({ seq: 2, users: [{ username: 'bob', online: true, unread: 2 }] })]);
        s = run([text({ seq: 1 }), text({ seq: 2 })], s); // the offline push hello already counted
        assert.equal(s.convs.bob.unread, 2);
        s = run([text({ seq: 3 })], s); // a new one
        assert.equal(s.convs.bob.unread, 3);
        assert.equal(totalUnread(s), 3);
        assert.equal(titleFor(s), '(3) Parley');
    });

    it('a hello count lower than what the offline push brings (a server that says 0) is raised to it', () => {
        const s = run([hello({ seq: 3, users: [{ username: 'bob', online: true, unread: 0 }] }), text({ seq: 1 }), text({ seq: 2 }), text({ seq: 3 })]);
        assert.equal(s.convs.bob.unread, 3);
    });

    it('a reconnect keeps what the page holds unread', () => {
        let s = run([hello({ seq: 0 }), text({ seq: 1 }), text({ seq: 2 })]);
        assert.equal(s.convs.bob.unread, 2);
        s = run([hello({ seq: 2, users: [{ username: 'bob', online: true, unread: 0 }] })], s);
        assert.equal(s.convs.bob.unread, 2);
    });

    it('a server whose hello has no unread counts: the client counts every new message', () => {
        const s = run([hello({ seq: 2, users: [{ username: 'bob', online: true }] }), text({ seq: 1 }), text({ seq: 2 })]);
        assert.equal(s.convs.bob.unread, 2);
    });

    it('reading sends read {with, upto: newest id} once, and clears the badge', () => {
        let s = run([hello(), text({ id: 10, seq: 1 }), text({ id: 11, seq: 2 })]);
        assert.deepEqual(readFrame(s, 'bob'), { kind: 'read', with: 'bob', upto: 11 });
        s = run([{ type: 'markRead', key: 'bob' }], s);
        assert.equal(s.convs.bob.unread, 0);
        assert.equal(titleFor(s), 'Parley');
        assert.equal(readFrame(s, 'bob'), null);
        // own messages alone never need a read frame
        s = run([{ type: 'send', cid: 'z', to: 'bob', data: 'x', now: T0 }, frame({ kind: 'ack', cid: 'z', id: 12, seq: 3, sent: T0 })], s);
        assert.equal(readFrame(s, 'bob'), null);
    });

    it("a receipt from the peer marks own messages read; one's own read on another session clears unread", () => {
        let s = run([
            hello(),
            { type: 'send', cid: 'c1', to: 'bob', data: 'x', now: T0 },
            frame({ kind: 'ack', cid: 'c1', id: 20, seq: 1, sent: T0 }),
            text({ id: 21, seq: 2 }),
        ]);
        const mine = s.convs.bob.messages[0];
        assert.equal(receiptOf(s.convs.bob, mine), 'sent');
        s = run([frame({ kind: 'read', from: 'bob', with: 'alice', upto: 20 })], s);
        assert.equal(receiptOf(s.convs.bob, mine), 'read');
        assert.equal(s.convs.bob.unread, 1);
        s = run([frame({ kind: 'read', from: 'alice', with: 'bob', upto: 21 })], s);
        assert.equal(s.convs.bob.unread, 0);
        assert.equal(s.convs.bob.myRead, 21);
    });

    it("hello's read and peer_read positions restore receipts and the read position after a reload", () => {
        const s = run([
            hello({ users: [{ username: 'bob', online: true, unread: 0, read: 40, peer_read: 41 }] }),
            frame({
                kind: 'history',
                with: 'bob',
                messages: [
                    { kind: 'text', id: 40, from: 'bob', to: 'alice', data: 'q', sent: T0 },
                    { kind: 'text', id: 41, from: 'alice', to: 'bob', data: 'a', sent: T0 },
                ],
                more: false,
            }),
        ]);
        assert.equal(s.convs.bob.myRead, 40);
        assert.equal(receiptOf(s.convs.bob, s.convs.bob.messages[1]), 'read');
        assert.equal(readFrame(s, 'bob'), null); // nothing new to mark read
    });

    it('group receipts count any member', () => {
        let s = run([
            hello(),
            frame({ kind: 'group', name: '#g', members: ['alice', 'bob', 'carol'], op: 'create', by: 'alice' }),
            { type: 'send', cid: 'g1', to: '#g', data: 'x', now: T0 },
            frame({ kind: 'ack', cid: 'g1', id: 30, seq: 1, sent: T0 }),
        ]);
        assert.equal(receiptOf(s.convs['#g'], s.convs['#g'].messages[0]), 'sent');
        s = run([frame({ kind: 'read', from: 'carol', with: '#g', upto: 30 })], s);
        assert.equal(receiptOf(s.convs['#g'], s.convs['#g'].messages[0]), 'read');
    });

    it('typing shows for a while, and stops when the message arrives', () => {
        let s = run([hello(), frame({ kind: 'typing', from: 'bob', to: 'alice' }, { now: T0 })]);
        assert.deepEqual(typingNames(s.convs.bob, T0 + 1000), ['bob']);
        assert.deepEqual(typingNames(s.convs.bob, T0 + 7000), []);
        s = run([text({ seq: 1 })], s);
        assert.deepEqual(typingNames(s.convs.bob, T0 + 1000), []);
        s = run([frame({ kind: 'typing', from: 'bob', to: 'alice' }, { now: T0 }), { type: 'expireTyping', now: T0 + 10000 }], s);
        assert.deepEqual(s.convs.bob.typing, {});
    });

    it('presence follows online/offline frames', () => {
        let s = run([hello({ users: [{ username: 'bob', online: false, unread: 0 }] })]);
        assert.equal(s.convs.bob.online, false);
        s = run([frame({ kind: 'online', from: 'bob' })], s);
        assert.equal(s.convs.bob.online, true);
        s = run([frame({ kind: 'offline', from: 'bob' })], s);
        assert.equal(s.convs.bob.online, false);
    });
});

describe('conversation list', () => {
    it('most recent activity first, with a preview of the newest message', () => {
        const s = run([
            hello({ users: ['bob', 'carol', 'dave'].map((u) => ({ username: u, online: false, unread: 0 })) }),
            text({ from: 'carol', seq: 1, sent: T0 + 10, data: 'c' }),
            text({ from: 'bob', seq: 2, sent: T0 + 20, data: 'b' }),
        ]);
        assert.deepEqual(
            conversationList(s).map((c) => c.key),
            ['bob', 'carol', 'dave'],
        );
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: 'b' });
    });

    it("hello's `last` gives the preview and the order without a history request", () => {
        const last = (id, from, data, sent) => ({ kind: 'text', id, from, to: 'x', data, sent });
        const s = run([
            hello({
                users: [
                    { username: 'bob', online: false, unread: 0, last: last(4, 'alice', 'from me', T0 + 5) },
                    { username: 'carol', online: true, unread: 2, last: last(9, 'carol', 'newest', T0 + 50) },
                    { username: 'dave', online: false, unread: 0, last: null },
                    { username: 'erin', online: false, unread: 0 }, // a server without the extension
                ],
            }),
        ]);
        assert.deepEqual(
            conversationList(s)
                .map((c) => c.key)
                .slice(0, 2),
            ['carol', 'bob'],
        );
        assert.deepEqual(s.convs.carol.preview, { from: 'carol', data: 'newest' });
        assert.deepEqual(s.convs.bob.preview, { from: 'alice', data: 'from me' });
        assert.deepEqual([s.convs.dave.preview, s.convs.dave.previewKnown], [null, true]); // nothing to fetch
        assert.deepEqual([s.convs.erin.preview, s.convs.erin.previewKnown], [null, false]); // fetch it
        // a malformed `last` is ignored, not trusted
        const bad = run([hello({ users: [{ username: 'bob', online: false, unread: 0, last: { id: 'x' } }] })]);
        assert.equal(bad.convs.bob.preview, null);
    });

    it('history pages: older ones prepend and tell whether more exist; previews do not claim a full page', () => {
        let s = run([hello()]);
        const m = (id) => ({ kind: 'text', id, from: 'bob', to: 'alice', data: `m${id}`, sent: T0 + id });
        s = run([frame({ kind: 'history', with: 'bob', messages: [m(9)], more: true }, { mode: 'preview' })], s);
        assert.equal(s.convs.bob.historyLoaded, false);
        assert.equal(s.convs.bob.preview.data, 'm9');
        s = run([frame({ kind: 'history', with: 'bob', messages: [m(7), m(8), m(9)], more: true }, { mode: 'initial' })], s);
        assert.equal(s.convs.bob.historyLoaded, true);
        assert.equal(s.convs.bob.more, true);
        s = run([{ type: 'historyRequested', key: 'bob', mode: 'older' }], s);
        assert.equal(s.convs.bob.loadingOlder, true);
        s = run([frame({ kind: 'history', with: 'bob', messages: [m(5), m(6)], more: false }, { mode: 'older' })], s);
        assert.deepEqual(
            s.convs.bob.messages.map((x) => x.id),
            [5, 6, 7, 8, 9],
        );
        assert.equal(s.convs.bob.more, false);
        assert.equal(s.convs.bob.loadingOlder, false);
        assert.equal(s.convs.bob.preview.data, 'm9');
    });

    it('groups: created, members kept; leaving removes the conversation', () => {
        let s = run([hello(), { type: 'wantOpen', key: '#team' }]);
        s = run([frame({ kind: 'group', name: '#team', members: ['alice', 'bob'], op: 'create', by: 'alice' })], s);
        assert.deepEqual(s.convs['#team'].members, ['alice', 'bob']);
        assert.equal(s.active, '#team');
        s = run([frame({ kind: 'group', name: '#team', members: ['alice', 'bob', 'carol'], op: 'join', by: 'carol' })], s);
        assert.equal(s.convs['#team'].members.length, 3);
        s = run([frame({ kind: 'group', name: '#team', members: ['bob', 'carol'], op: 'leave', by: 'alice' })], s);
        assert.equal(s.convs['#team'], undefined);
        assert.equal(s.active, null);
    });

    it('bad frames change nothing and never throw', () => {
        const s0 = run([hello()]);
        const junk = [
            { kind: 'text' },
            { kind: 'read', from: 'bob' },
            { kind: 'online' },
            { kind: 'typing', from: 5 },
            { kind: 'history', messages: 'no' },
            { kind: 'group', name: 'nohash' },
            { kind: 'what' },
        ];
        let s = s0;
        for (const f of junk) s = reduce(s, frame(f));
        assert.deepEqual(s.convs, s0.convs);
    });
});
