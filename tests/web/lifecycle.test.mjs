// The message lifecycle in the web client's store (web/src/lib/store.js) and
// mention reading (web/src/lib/mentions.js): edit/delete/react frames
// applied idempotently by id, live or replayed, texts showing their current
// state (sync, history), this page's own edits/deletes/reactions as ops
// (optimistic, settled by the ack, failed or refused by an error, re-sent
// after a reconnect), mention counters from hello and texts, cleared by
// reading, reply previews, notifications and mutes. No socket, no React.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0, frame, helloWith, run } from './lib/frames.mjs';
import { completeMention, completions, findMentions, mentionQuery, mentionSpans, mentionedNames } from '../../web/src/lib/mentions.js';
import { loadMuted, saveMuted } from '../../web/src/lib/prefs.js';
import {
    canDelete,
    lastOwnMessage,
    mentionCandidates,
    mentionTest,
    notificationFor,
    opsFor,
    replyPreview,
    resendOps,
    shownMessage,
} from '../../web/src/lib/store.js';

const hello = (o = {}) =>
    helloWith(
        [
            { username: 'bob', online: true, unread: 0 },
            { username: '#team', online: false, unread: 0, owner: 'carol', admins: ['alice'], role: 'admin' },
        ],
        o,
    );
const text = (o) => frame({ kind: 'text', seq: 1, from: 'bob', to: 'alice', data: 'hi', sent: T0, cid: `c${o.id}`, ...o });
const msg = (s, key, id) => s.convs[key].messages.find((m) => m.id === id);

describe('lifecycle frames: edit, delete, react by message id', () => {
    it('a `gone` stand-in (a message no longer kept, or of a group left) shows nothing but moves the seq', () => {
        const s = run([hello(), text({ id: 10, seq: 1 }), frame({ kind: 'gone', id: 7, with: '#team', seq: 2 })]);
        assert.equal(s.seq, 2);
        assert.equal(s.convs['#team'].messages.length, 0, 'nothing shown for it');
    });

    it('an edit changes the text and marks it edited; a replay or an older edit changes nothing', () => {
        let s = run([hello(), text({ id: 10, seq: 1, data: 'helo' })]);
        s = run([frame({ kind: 'edit', id: 10, with: 'bob', from: 'bob', data: 'hello', edited: T0 + 5, seq: 2 })], s);
        assert.deepEqual([msg(s, 'bob', 10).data, msg(s, 'bob', 10).edited], ['hello', T0 + 5]);
        assert.equal(s.seq, 2);
        const same = run([frame({ kind: 'edit', id: 10, with: 'bob', from: 'bob', data: 'hello', edited: T0 + 5, seq: 2 })], s);
        assert.equal(same.convs, s.convs, 'a replayed edit is a no-op');
        const older = run([frame({ kind: 'edit', id: 10, with: 'bob', from: 'bob', data: 'stale', edited: T0 + 1, seq: 2 })], s);
        assert.equal(msg(older, 'bob', 10).data, 'hello');
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: 'hello' }, 'the preview follows the edit of the newest message');
    });

    it('a delete empties the message, drops its reactions and is final (edits and reactions after it change nothing)', () => {
        let s = run([
            hello(),
            text({ id: 10, seq: 1, data: 'oops' }),
            frame({ kind: 'react', id: 10, with: 'bob', from: 'bob', emoji: '👍', on: true, seq: 2 }),
            frame({ kind: 'delete', id: 10, with: 'bob', by: 'bob', deleted: T0 + 9, seq: 3 }),
        ]);
        assert.deepEqual(msg(s, 'bob', 10), { id: 10, from: 'bob', to: 'alice', data: '', sent: T0, cid: 'c10', deleted: T0 + 9, by: 'bob' });
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: '', deleted: true });
        const after = run(
            [
                frame({ kind: 'edit', id: 10, with: 'bob', from: 'bob', data: 'back', edited: T0 + 20, seq: 4 }),
                frame({ kind: 'react', id: 10, with: 'bob', from: 'bob', emoji: '🎉', on: true, seq: 5 }),
                frame({ kind: 'delete', id: 10, with: 'bob', by: 'bob', deleted: T0 + 30, seq: 6 }),
            ],
            s,
        );
        assert.deepEqual(msg(after, 'bob', 10), msg(s, 'bob', 10));
    });

    it('reactions are sets of names per emoji: on adds once, off removes, replays change nothing', () => {
        const r = (from, emoji, on, seq) => frame({ kind: 'react', id: 10, with: '#team', from, emoji, on, seq });
        let s = run([
            hello(),
            text({ id: 10, to: '#team', from: 'carol' }),
            r('bob', '👍', true, 2),
            r('carol', '👍', true, 3),
            r('bob', '👍', true, 3),
            r('bob', '🎉', true, 4),
        ]);
        assert.deepEqual(msg(s, '#team', 10).reactions, { '👍': ['bob', 'carol'], '🎉': ['bob'] });
        s = run([r('bob', '🎉', false, 5), r('bob', '🎉', false, 5), r('bob', '👍', false, 6)], s);
        assert.deepEqual(msg(s, '#team', 10).reactions, { '👍': ['carol'] });
        s = run([r('carol', '👍', false, 7)], s);
        assert.equal('reactions' in msg(s, '#team', 10), false);
    });

    it('frames for a message not held change nothing (but a preview that shows it), and none for unknown conversations', () => {
        let s = run([hello({ users: [{ username: 'bob', online: true, unread: 1, last: { id: 77, from: 'bob', data: 'secret', sent: T0 } }] })]);
        assert.deepEqual([s.convs.bob.preview, s.convs.bob.previewId], [{ from: 'bob', data: 'secret' }, 77]);
        s = run([frame({ kind: 'edit', id: 77, with: 'bob', from: 'bob', data: 'public', edited: T0 + 1, seq: 1 })], s);
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: 'public' });
        s = run([frame({ kind: 'delete', id: 77, with: 'bob', by: 'bob', deleted: T0 + 2, seq: 2 })], s);
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: '', deleted: true });
        assert.equal(s.convs.bob.unread, 0, 'the deleted unread message no longer counts');
        const t = run([frame({ kind: 'react', id: 5, with: 'nobody', from: 'x', emoji: '👍', on: true, seq: 3 })], s);
        assert.equal(t.convs.nobody, undefined);
        assert.equal(t.seq, 3);
    });

    it('an edit of an older message leaves the preview of a newer one (even one still sending)', () => {
        let s = run([hello(), text({ id: 10, seq: 1, data: 'old' }), { type: 'send', cid: 'n', to: 'bob', data: 'newer', now: T0 + 1 }]);
        s = run([frame({ kind: 'edit', id: 10, with: 'bob', from: 'bob', data: 'old!', edited: T0 + 2, seq: 2 })], s);
        assert.deepEqual(s.convs.bob.preview, { from: 'alice', data: 'newer' });
    });

    it("hello's `last` of a deleted newest message shows as deleted", () => {
        const s = run([hello({ users: [{ username: 'bob', online: true, unread: 0, last: { id: 7, from: 'bob', data: '', sent: T0, deleted: T0 + 1 } }] })]);
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: '', deleted: true });
    });
});

describe('texts showing their current state (sync, offline push, history)', () => {
    it('a replayed text brings the edit, the reactions, the delete of a message already held', () => {
        let s = run([hello(), text({ id: 10, seq: 1, data: 'first' })]);
        s = run([text({ id: 10, seq: 1, data: 'second', edited: T0 + 3, reactions: { '👍': ['alice'] } })], s);
        assert.deepEqual([msg(s, 'bob', 10).data, msg(s, 'bob', 10).edited, msg(s, 'bob', 10).reactions], ['second', T0 + 3, { '👍': ['alice'] }]);
        s = run([text({ id: 10, seq: 1, data: '', deleted: T0 + 4, by: 'bob', reply_to: 3 })], s);
        assert.equal(msg(s, 'bob', 10).data, '');
        assert.equal(msg(s, 'bob', 10).deleted, T0 + 4);
        assert.equal(msg(s, 'bob', 10).reply_to, 3, 'reply_to is kept after a delete');
        assert.equal(s.convs.bob.unread, 1, 'the copy is not counted twice');
    });

    it('then the edit/delete/react entries after it are replayed on top, idempotently', () => {
        // sync after 0: the text (current state: edited, reacted), its edit entry (current data), the react entry
        const s = run([
            hello({ seq: 5 }),
            text({ id: 10, seq: 1, data: 'v2', edited: T0 + 2, reactions: { '👍': ['bob'] } }),
            frame({ kind: 'edit', id: 10, with: 'bob', from: 'bob', data: 'v2', edited: T0 + 2, seq: 2 }),
            frame({ kind: 'react', id: 10, with: 'bob', from: 'bob', emoji: '👍', on: true, seq: 3 }),
        ]);
        assert.deepEqual(msg(s, 'bob', 10), {
            id: 10,
            from: 'bob',
            to: 'alice',
            data: 'v2',
            sent: T0,
            cid: 'c10',
            edited: T0 + 2,
            reactions: { '👍': ['bob'] },
        });
    });

    it('an edit replayed as a delete (edited, then deleted since) ends deleted', () => {
        const s = run([
            hello({ seq: 5 }),
            text({ id: 10, seq: 1, data: '', deleted: T0 + 5, by: 'bob' }),
            frame({ kind: 'delete', id: 10, with: 'bob', by: 'bob', deleted: T0 + 5, seq: 2 }),
            frame({ kind: 'delete', id: 10, with: 'bob', by: 'bob', deleted: T0 + 5, seq: 3 }),
        ]);
        assert.equal(msg(s, 'bob', 10).deleted, T0 + 5);
        assert.equal(s.convs.bob.unread, 0, 'a deleted message never counts as unread');
    });

    it('history pages carry the current state, and update what is held', () => {
        let s = run([hello(), text({ id: 10, seq: 1, data: 'a' }), text({ id: 11, seq: 2, data: 'b' })]);
        s = run(
            [
                frame(
                    {
                        kind: 'history',
                        with: 'bob',
                        messages: [
                            { kind: 'text', id: 10, from: 'bob', to: 'alice', data: 'a!', sent: T0, edited: T0 + 1, mentions: ['alice'] },
                            { kind: 'text', id: 11, from: 'bob', to: 'alice', data: '', sent: T0, deleted: T0 + 2, by: 'bob' },
                        ],
                        more: false,
                    },
                    { mode: 'initial' },
                ),
            ],
            s,
        );
        assert.deepEqual([msg(s, 'bob', 10).data, msg(s, 'bob', 10).mentions], ['a!', ['alice']]);
        assert.equal(msg(s, 'bob', 11).deleted, T0 + 2);
        assert.deepEqual(s.convs.bob.preview, { from: 'bob', data: '', deleted: true });
    });
});

describe('unread and mention counts', () => {
    it("hello's mentions per conversation; a live text mentioning this user adds one; reading clears both", () => {
        let s = run([hello({ users: [{ username: '#team', unread: 3, mentions: 2 }] })]);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [3, 2]);
        s = run([text({ id: 20, seq: 1, to: '#team', data: '@alice look', mentions: ['alice'] }), text({ id: 21, seq: 2, to: '#team', data: 'x' })], s);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [5, 3]);
        s = run([{ type: 'markRead', key: '#team' }], s);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [0, 0]);
    });

    it('own texts and texts mentioning others do not count; replays below hello seq count only past hello', () => {
        let s = run([hello({ seq: 4, users: [{ username: '#team', unread: 1, mentions: 1 }] })]);
        // the offline push of the entry hello counted already
        s = run([text({ id: 20, seq: 4, to: '#team', mentions: ['alice'] })], s);
        assert.equal(s.convs['#team'].mentions, 1);
        s = run([text({ id: 21, seq: 5, to: '#team', mentions: ['carol'] }), text({ id: 22, seq: 6, from: 'alice', to: '#team', mentions: ['alice'] })], s);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [2, 1]);
    });

    it('a read from another session of this user clears the mentions up to it', () => {
        let s = run([hello(), text({ id: 20, seq: 1, to: '#team', mentions: ['alice'] }), text({ id: 21, seq: 2, to: '#team', mentions: ['alice'] })]);
        s = run([frame({ kind: 'read', from: 'alice', with: '#team', upto: 20 })], s);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [1, 1]);
        s = run([frame({ kind: 'read', from: 'alice', with: '#team', upto: 21 })], s);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [0, 0]);
    });

    it('a delete of an unread message takes it off unread and mentions, once; of a read or own one, not', () => {
        let s = run([hello(), text({ id: 20, seq: 1, to: '#team', mentions: ['alice'] }), text({ id: 21, seq: 2, to: '#team' })]);
        const del = (id, seq) => frame({ kind: 'delete', id, with: '#team', by: 'carol', deleted: T0 + 1, seq });
        s = run([del(20, 3), del(20, 4)], s);
        assert.deepEqual([s.convs['#team'].unread, s.convs['#team'].mentions], [1, 0]);
        s = run([{ type: 'markRead', key: '#team' }, del(21, 5)], s);
        assert.equal(s.convs['#team'].unread, 0);
        s = run([text({ id: 22, seq: 6, from: 'alice', to: '#team' }), del(22, 7)], s);
        assert.equal(s.convs['#team'].unread, 0);
    });

    it('on a reconnect, mentions held unread still count when the server says fewer', () => {
        let s = run([hello({ seq: 1 }), text({ id: 20, seq: 2, to: '#team', mentions: ['alice'] })]);
        s = run([hello({ seq: 9, users: [{ username: '#team', unread: 0 }] })], s);
        assert.equal(s.convs['#team'].mentions, 1);
    });
});

describe("this page's edits, deletes and reactions (ops)", () => {
    const held = () =>
        run(
            [hello(), frame({ kind: 'ack', cid: 'x', id: 1, seq: 1, sent: T0 }), text({ id: 10, seq: 2, data: 'yo' })],
            run([hello(), { type: 'send', cid: 'x', to: 'bob', data: 'mine', now: T0 }]),
        );
    const op = (cid, o, now = T0 + 1) => ({ type: 'op', cid, op: { with: 'bob', ...o }, now });

    it('show at once, then the ack applies them (the acting session gets no frame of its own change)', () => {
        let s = run([op('e1', { kind: 'edit', id: 1, data: 'mine!' }), op('r1', { kind: 'react', id: 10, emoji: '👍', on: true })], held());
        const ops = opsFor(s, 'bob');
        assert.deepEqual(Object.keys(ops), ['1', '10']);
        const shown = shownMessage(msg(s, 'bob', 1), ops[1], 'alice');
        assert.deepEqual([shown.data, shown.pendingOp.cid, shown.pendingOp.status], ['mine!', 'e1', 'sending']);
        assert.deepEqual(shownMessage(msg(s, 'bob', 10), ops[10], 'alice').reactions, { '👍': ['alice'] });
        assert.equal(msg(s, 'bob', 1).data, 'mine', 'the held message waits for the ack');
        s = run([frame({ kind: 'ack', cid: 'e1', id: 1, seq: 3, sent: T0 + 7 }), frame({ kind: 'ack', cid: 'r1', id: 10, seq: 4, sent: T0 + 8 })], s);
        assert.deepEqual(s.ops, {});
        assert.deepEqual([msg(s, 'bob', 1).data, msg(s, 'bob', 1).edited], ['mine!', T0 + 7]);
        assert.deepEqual(msg(s, 'bob', 10).reactions, { '👍': ['alice'] });
        assert.equal(s.seq, 4);
        // the same ack again (a retry answered as before) changes nothing
        const again = run([frame({ kind: 'ack', cid: 'e1', id: 1, seq: 3, sent: T0 + 7 })], s);
        assert.equal(again.convs, s.convs);
    });

    it('a delete shows the placeholder until acked, then is kept with by = this user', () => {
        let s = run([op('d1', { kind: 'delete', id: 1 })], held());
        assert.equal(shownMessage(msg(s, 'bob', 1), opsFor(s, 'bob')[1], 'alice').deleted > 0, true);
        s = run([frame({ kind: 'ack', cid: 'd1', id: 1, seq: 3, sent: T0 + 9 })], s);
        assert.deepEqual([msg(s, 'bob', 1).deleted, msg(s, 'bob', 1).by, msg(s, 'bob', 1).data], [T0 + 9, 'alice', '']);
    });

    it('a refusal (forbidden, bad_field) drops the op, undoing it, and says why; a transient error leaves it to re-send', () => {
        let s = run(
            [
                op('e1', { kind: 'edit', id: 10, data: 'not mine' }),
                op('r1', { kind: 'react', id: 10, emoji: '👍', on: true }),
                op('d1', { kind: 'delete', id: 1 }),
            ],
            held(),
        );
        s = run([frame({ kind: 'error', code: 'forbidden', message: 'only the author may edit', cid: 'e1' }, { now: T0 + 50 })], s);
        assert.equal(s.ops.e1, undefined);
        assert.equal(s.notice.text, 'Could not edit the message: only the author may edit.');
        assert.equal(s.notice.code, 'forbidden');
        s = run([frame({ kind: 'error', code: 'bad_field', cid: 'r1' })], s);
        assert.equal(s.notice.text, 'Could not react to the message: the server refused it.');
        s = run([frame({ kind: 'error', code: 'unavailable', message: 'try later', cid: 'd1' })], s);
        assert.equal(s.ops.d1.status, 'failed');
        assert.deepEqual(
            resendOps(s).map((o) => o.cid),
            ['d1'],
        );
        s = run([{ type: 'retry', cid: 'd1' }], s);
        assert.equal(s.ops.d1.status, 'sending');
        s = run([{ type: 'timeout', cid: 'd1' }], s);
        assert.equal(s.ops.d1.error, 'no answer from the server');
        s = run([{ type: 'discard', cid: 'd1' }], s);
        assert.deepEqual(s.ops, {});
        assert.equal(msg(s, 'bob', 1).deleted, undefined);
    });

    it('a discarded op whose ack comes late is applied all the same: the page shows what the server stored', () => {
        let s = run([op('d1', { kind: 'delete', id: 10 }), { type: 'timeout', cid: 'd1' }], held());
        assert.equal(s.ops.d1.status, 'failed');
        s = run([{ type: 'discard', cid: 'd1' }], s);
        assert.deepEqual(s.ops, {}, 'no longer shown as pending');
        assert.equal(msg(s, 'bob', 10).deleted, undefined, 'reverted locally');
        s = run([frame({ kind: 'ack', cid: 'd1', id: 10, seq: 3, sent: T0 + 20 })], s);
        assert.equal(msg(s, 'bob', 10).deleted, T0 + 20, 'the late ack deletes it: the server did');
        assert.deepEqual(s.discarded, {});
        // a reaction discarded, then acked late
        s = run([op('r1', { kind: 'react', id: 1, emoji: '🎉', on: true }), { type: 'timeout', cid: 'r1' }, { type: 'discard', cid: 'r1' }], s);
        assert.equal(msg(s, 'bob', 1).reactions, undefined);
        s = run([frame({ kind: 'ack', cid: 'r1', id: 1, seq: 4, sent: T0 + 21 })], s);
        assert.deepEqual(msg(s, 'bob', 1).reactions, { '🎉': ['alice'] });
        // at most 32 discarded ops are remembered
        for (let i = 0; i < 40; i++) s = run([op(`x${i}`, { kind: 'edit', id: 1, data: `v${i}` }), { type: 'discard', cid: `x${i}` }], s);
        assert.equal(Object.keys(s.discarded).length, 32);
        assert.ok(s.discarded.x39 && !s.discarded.x7);
    });

    it("a refresh (history {before: id + 1, limit: 1}) after a discard brings the message's stored state, and leaves paging alone", () => {
        let s = run([op('d1', { kind: 'delete', id: 10 }), { type: 'discard', cid: 'd1' }], held());
        s = run([frame({ kind: 'history', with: 'bob', messages: [{ id: 1, from: 'alice', to: 'bob', data: 'mine', sent: T0 }], more: true })], s);
        const more = s.convs.bob.more;
        s = run(
            [
                frame(
                    {
                        kind: 'history',
                        with: 'bob',
                        messages: [{ id: 10, from: 'bob', to: 'alice', data: '', sent: T0, deleted: T0 + 30, by: 'alice' }],
                        more: true,
                    },
                    { mode: 'refresh' },
                ),
            ],
            s,
        );
        assert.equal(msg(s, 'bob', 10).deleted, T0 + 30);
        assert.equal(s.convs.bob.more, more);
        s = run([{ type: 'historyFailed', key: 'bob', mode: 'refresh' }], s);
        assert.equal(s.convs.bob.more, more, 'a refresh refused changes no paging');
    });

    it("a reply's quote names the original's author when known, though the original is not loaded", () => {
        let s = run([{ type: 'send', cid: 'q', to: 'bob', data: 'yes', now: T0 + 2, replyTo: 10 }], held());
        s = run([frame({ kind: 'ack', cid: 'q', id: 12, seq: 5, sent: T0 + 3 })], s);
        // a reload of the conversation without the original (as after a reset of its messages)
        const c = { ...s.convs.bob, messages: s.convs.bob.messages.filter((m) => m.id !== 10) };
        assert.deepEqual(replyPreview(c, 10), { id: 10, missing: true, from: 'bob' });
        assert.deepEqual(replyPreview(c, 4), { id: 4, missing: true });
        const p = { ...c, messages: [], previewId: 4, preview: { from: 'alice', data: 'x' } };
        assert.deepEqual(replyPreview(p, 4), { id: 4, missing: true, from: 'alice' }, "the list's preview names its author");
    });

    it('a reply is sent and kept with reply_to; its preview is the original, or missing when not held', () => {
        let s = run([{ type: 'send', cid: 'q', to: 'bob', data: 'yes', now: T0 + 2, replyTo: 10 }], held());
        assert.equal(s.outbox.q.reply_to, 10);
        s = run([frame({ kind: 'ack', cid: 'q', id: 12, seq: 5, sent: T0 + 3 })], s);
        assert.equal(msg(s, 'bob', 12).reply_to, 10);
        assert.deepEqual(replyPreview(s.convs.bob, 10), { id: 10, from: 'bob', data: 'yo', deleted: false });
        assert.deepEqual(replyPreview(s.convs.bob, 3), { id: 3, missing: true });
        s = run([frame({ kind: 'delete', id: 10, with: 'bob', by: 'bob', deleted: T0 + 4, seq: 6 })], s);
        assert.deepEqual(replyPreview(s.convs.bob, 10), { id: 10, from: 'bob', data: '', deleted: true });
    });

    it('ArrowUp edits the newest own message not deleted', () => {
        let s = held();
        assert.equal(lastOwnMessage(s.convs.bob, 'alice').id, 1);
        s = run([frame({ kind: 'delete', id: 1, with: 'bob', by: 'alice', deleted: T0 + 1, seq: 9 })], s);
        assert.equal(lastOwnMessage(s.convs.bob, 'alice'), null);
    });

    it('delete rights: the author; in a group also the owner and admins', () => {
        const s = run([text({ id: 30, to: '#team', from: 'carol' }), text({ id: 31, to: '#team', from: 'alice' })], run([hello()]));
        const g = s.convs['#team'];
        assert.equal(canDelete(g, msg(s, '#team', 30), 'alice'), true, 'alice is an admin');
        assert.equal(canDelete(g, msg(s, '#team', 30), 'dave'), false, 'a plain member: only his own');
        assert.equal(canDelete(g, msg(s, '#team', 31), 'alice'), true);
        const b = run([text({ id: 32 })], s);
        assert.equal(canDelete(b.convs.bob, msg(b, 'bob', 32), 'alice'), false, "1:1: never the peer's");
    });
});

describe('mentions: reading @name as the contract does', () => {
    const team = new Set(['bob', 'carol', 'j.r', 'alice']);
    it("highlight agrees with the counts: a message's `mentions` when it has them, none added by an edit", () => {
        assert.equal(mentionTest({ data: '@bob @carol', mentions: ['bob'] }, team)('carol'), false, 'the server did not count carol');
        assert.equal(mentionTest({ data: '@bob @carol', mentions: ['bob'] }, team)('bob'), true);
        assert.equal(mentionTest({ data: 'hi @carol', edited: T0 }, team)('carol'), false, 'an edit added carol: no mention, no badge, no highlight');
        assert.equal(mentionTest({ data: 'hi @carol' }, team)('carol'), true, 'a text without the field (not stored yet): the participants');
        assert.equal(mentionTest({ data: 'hi @carol', edited: 1, pending: true }, team)('carol'), true);
    });

    it('an own text acked keeps the mentions its first version made (as the server reads them); a later edit changes none', () => {
        let s = run([hello(), { type: 'send', cid: 'm', to: 'bob', data: 'hi @bob and @nobody', now: T0 }]);
        s = run([frame({ kind: 'ack', cid: 'm', id: 3, seq: 1, sent: T0 })], s);
        assert.deepEqual(msg(s, 'bob', 3).mentions, ['bob']);
        s = run(
            [
                { type: 'op', cid: 'e', op: { with: 'bob', kind: 'edit', id: 3, data: 'hi' }, now: T0 },
                frame({ kind: 'ack', cid: 'e', id: 3, seq: 2, sent: T0 + 1 }),
            ],
            s,
        );
        assert.deepEqual(msg(s, 'bob', 3).mentions, ['bob']);
    });
    const isName = (n) => team.has(n);

    it('the longest run of name characters; trailing . - _ dropped when it is not a participant', () => {
        assert.deepEqual(mentionedNames('hi @bob, and @carol.', isName), ['bob', 'carol']);
        assert.deepEqual(mentionedNames('ask @j.r. now', isName), ['j.r']);
        assert.deepEqual(mentionedNames('@bob_- there', isName), ['bob']);
        assert.deepEqual(mentionedNames('@bobby and @dave', isName), [], 'not participants');
    });

    it('@ preceded by a name character is not a mention (an e-mail address)', () => {
        assert.deepEqual(mentionedNames('mail bob@carol or x.@bob', isName), []);
        assert.deepEqual(mentionedNames('(@bob) @bob', isName), ['bob']);
    });

    it('spans cut the text around the mentions for highlighting', () => {
        assert.deepEqual(mentionSpans('hey @bob!', isName), [{ text: 'hey ' }, { text: '@bob', mention: 'bob' }, { text: '!' }]);
        assert.deepEqual(findMentions('@alice', isName), [{ start: 0, end: 6, name: 'alice' }]);
    });

    it('at most 64 @ candidates per text are looked at', () => {
        const s = `${'@x '.repeat(64)}@bob`;
        assert.deepEqual(mentionedNames(s, isName), []);
        assert.deepEqual(mentionedNames(`${'@x '.repeat(63)}@bob`, isName), ['bob']);
    });

    it('completion: the @prefix before the caret, candidates, and the text with the name put in', () => {
        assert.deepEqual(mentionQuery('hi @ca', 6), { start: 3, prefix: 'ca' });
        assert.deepEqual(mentionQuery('hi @', 4), { start: 3, prefix: '' });
        assert.equal(mentionQuery('mail a@b', 8), null);
        assert.equal(mentionQuery('hi @ca there', 12), null);
        assert.deepEqual(completions('c', ['carol', 'bob', 'cid', 'carol']), ['carol', 'cid']);
        assert.deepEqual(completeMention('hi @ca', 6, 'carol'), { text: 'hi @carol ', caret: 10 });
        assert.deepEqual(completeMention('hi @ca there', 6, 'carol'), { text: 'hi @carol there', caret: 10 });
    });

    it("the candidates: a group's members (or who the page knows in it), the 1:1 peer; never this user", () => {
        let s = run([hello(), text({ id: 40, to: '#team', from: 'dave' })]);
        assert.deepEqual(mentionCandidates(s.convs['#team'], 'alice'), ['carol', 'dave']);
        s = run([frame({ kind: 'group', op: 'add', name: '#team', by: 'carol', members: ['alice', 'bob', 'carol'], owner: 'carol', admins: ['alice'] })], s);
        assert.deepEqual(mentionCandidates(s.convs['#team'], 'alice'), ['bob', 'carol']);
        assert.deepEqual(mentionCandidates(s.convs.bob, 'alice'), ['bob']);
    });
});

describe('notifications and mutes', () => {
    const live = (o) => ({ kind: 'text', seq: 5, from: 'bob', to: 'alice', data: 'psst', sent: T0, ...o });

    it('a live 1:1 text, or a group text mentioning this user, notifies; nothing else does', () => {
        const s = run([hello({ seq: 4 })]);
        assert.deepEqual(notificationFor(s, live({ id: 50 })), { title: 'bob', body: 'psst', tag: 'parley-50', key: 'bob' });
        assert.deepEqual(notificationFor(s, live({ id: 51, to: '#team', mentions: ['alice'] })), {
            title: 'bob mentioned you in #team',
            body: 'psst',
            tag: 'parley-51',
            key: '#team',
        });
        assert.equal(notificationFor(s, live({ id: 52, to: '#team' })), null, 'a group text not mentioning her');
        assert.equal(notificationFor(s, live({ id: 53, from: 'alice', to: 'bob' })), null, 'her own');
        assert.equal(notificationFor(s, live({ id: 54, seq: 4 })), null, 'a replay hello counted');
        const held = run([frame(live({ id: 55 }))], s);
        assert.equal(notificationFor(held, live({ id: 55 })), null, 'a copy of a message held');
    });

    it('a muted conversation notifies nothing; the mute list comes from the page (localStorage)', () => {
        let s = run([hello({ seq: 4 }), { type: 'mute', key: 'bob', on: true }]);
        assert.equal(notificationFor(s, live({ id: 60 })), null);
        s = run([{ type: 'mute', key: 'bob', on: false }], s);
        assert.notEqual(notificationFor(s, live({ id: 60 })), null);
        s = run([{ type: 'muted', keys: ['#team', 'bob', 3] }], s);
        assert.deepEqual(s.muted, { '#team': true, bob: true });

        const mem = new Map();
        const storage = { getItem: (k) => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, v) };
        saveMuted('alice', ['bob', '#team', 'bob'], storage);
        assert.deepEqual(loadMuted('alice', storage), ['#team', 'bob']);
        assert.deepEqual(loadMuted('carol', storage), []);
        mem.set('parley:muted:alice', 'not json');
        assert.deepEqual(loadMuted('alice', storage), []);
    });
});
