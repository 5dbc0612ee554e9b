// store.js - the client's whole chat state as one immutable value and a pure
// reducer over events (server frames and user actions). No I/O, no timers, no
// React: connection.js feeds it, the UI reads it through the selectors below,
// and the unit tests drive it directly.
//
// What it keeps (docs/protocol.md is the source of every rule):
// - messages per conversation, sorted by id (ids increase within a
//   conversation), each id at most once whatever path brought it (live
//   delivery, offline push, sync replay, history page, ack);
// - the outbox: own messages not acknowledged yet, keyed by cid, shown as
//   "sending" or "failed", re-sent with the same cid until an ack (or the
//   copy of the message itself, replayed by sync) settles them;
// - seq tracking: the highest inbox seq this client has seen (text frames and
//   acks both carry one) with the epoch from hello, for `sync` after a
//   reconnect; and the seq hello reported, which separates the entries hello's
//   unread counts already include from new ones;
// - per conversation: presence, unread count, last-message preview and time,
//   the peer's read position (receipts), who is typing, group members and
//   roles (owner, admins, this user's own role: from hello's entries and
//   group frames), whether this user was removed from the group;
// - who this user blocks (hello `blocked`, `block` frames from the user's
//   other sessions, and this page's own block/unblock);
// - the message lifecycle (docs/protocol.md "Message lifecycle"): each
//   message's current state (`edited`, `deleted`/`by`, `reactions`,
//   `reply_to`, `mentions`), changed by `edit`/`delete`/`react` frames and by
//   texts that show the current state (sync, offline push, history), each
//   applied idempotently by message id; per conversation the unread
//   mentions of this user (hello `mentions`, texts whose `mentions` name him);
//   this page's own edits/deletes/reactions not acknowledged yet (`ops`, by
//   cid, re-sent like texts); muted conversations (kept by the page in
//   localStorage, see prefs.js).
//
// Conversation key: the peer's user name for 1:1, the `#name` for a group.

import { mentionedNames } from './mentions.js';

export function initialState() {
    return {
        me: null,
        epoch: null,
        seq: 0, // highest inbox seq seen on any session of this page
        helloSeq: 0, // seq reported by the last hello
        helloFirst: true, // the last hello was the page's first (not a reconnect)
        convs: {}, // key -> conversation (see newConv)
        outbox: {}, // cid -> {cid, to, data, created, status: 'sending'|'failed', error, tries}
        active: null, // key of the conversation shown
        conn: { status: 'connecting', since: 0, retryAt: 0, attempt: 0 },
        syncing: false,
        notice: null, // {text, at}: last error worth showing
        wantOpen: null, // a group asked for (create/join): opened when its frame comes
        blocked: {}, // name -> true: users this user blocks
        ops: {}, // cid -> {cid, kind: 'edit'|'delete'|'react', with, id, data?, emoji?, on?, created, status, error, tries}
        discarded: {}, // cid -> op: ops the user discarded whose ack may still come (the server may have stored them)
        muted: {}, // key -> true: conversations that notify nothing
    };
}

export function newConv(key) {
    return {
        key,
        group: key.startsWith('#'),
        online: false,
        unread: 0, // shown: max(unreadBase, unreadOld) + unreadNew
        unreadBase: 0, // count from the last hello
        unreadOld: 0, // entries with seq <= hello's seq that came after it
        unreadNew: 0, // entries newer than hello
        mentions: 0, // unread messages mentioning this user: max(mentionBase, mentionOld) + mentionNew
        mentionBase: 0,
        mentionOld: 0,
        mentionNew: 0,
        messages: [], // confirmed messages sorted by id
        lastActivity: 0,
        preview: null, // {from, data, deleted?} of the newest message
        previewId: 0, // its id, when known (edits and deletes of it change the preview)
        previewKnown: false, // hello said what the newest message is (its `last`), none or one
        more: null, // null: unknown, true/false from the last initial/older history page
        historyLoaded: false, // an initial page (the newest messages) was merged
        loadingOlder: false,
        peerRead: 0, // 1:1: highest id the peer has read
        readBy: {}, // group: member -> highest id read
        myRead: 0, // highest id this user has marked read
        typing: {}, // user -> until (ms)
        members: null, // group: member names when known
        owner: null, // group: the owner's name, when the server says (hello, group frames)
        admins: null, // group: admins' names, when the server says
        adminsMore: false, // group: hello listed only some of the admins (the rest unknown)
        myRole: null, // group: this user's role ('owner' | 'admin' | 'member') as hello said it
        removed: null, // group: {by} when this user was removed from it (op remove)
        refused: false, // 1:1: the peer refused the last text (forbidden): no typing to them
        joined: true,
        known: false, // presence known (listed by hello, or looked up)
    };
}

export const convKey = (me, f) => (f.to && f.to.startsWith('#') ? f.to : f.from === me ? f.to : f.from);

// ------------------------------------------------------------------ helpers

function unreadParts(unreadBase, unreadOld, unreadNew) {
    return { unreadBase, unreadOld, unreadNew, unread: Math.max(unreadBase, unreadOld) + unreadNew };
}

// The mention counter, kept like unread (hello's count, older entries that
// came after it, newer ones).
function mentionParts(mentionBase, mentionOld, mentionNew) {
    return { mentionBase, mentionOld, mentionNew, mentions: Math.max(mentionBase, mentionOld) + mentionNew };
}

// One counted message less (a delete of an unread message): the newer
// entries first, else hello's count and the older ones alike.
function lessUnread(c) {
    if (c.unreadNew > 0) return unreadParts(c.unreadBase, c.unreadOld, c.unreadNew - 1);
    return unreadParts(Math.max(0, c.unreadBase - 1), Math.max(0, c.unreadOld - 1), 0);
}

function lessMentions(c) {
    if (c.mentionNew > 0) return mentionParts(c.mentionBase, c.mentionOld, c.mentionNew - 1);
    return mentionParts(Math.max(0, c.mentionBase - 1), Math.max(0, c.mentionOld - 1), 0);
}

export const mentionsMe = (m, me) => !!m && Array.isArray(m.mentions) && m.mentions.includes(me);

function withConv(state, key, fn) {
    const cur = state.convs[key] || newConv(key);
    const next = fn(cur);
    if (next === cur && state.convs[key]) return state;
    return { ...state, convs: { ...state.convs, [key]: next } };
}

// Index of id in messages sorted by id, or -(insertion point) - 1.
export function findId(messages, id) {
    let lo = 0;
    let hi = messages.length - 1;
    while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const v = messages[mid].id;
        if (v === id) return mid;
        if (v < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -lo - 1;
}

// Merges messages into a sorted list; returns [list, added] (added: the
// messages that were not there yet). With update, a message already there
// takes the state the incoming copy shows (sync, offline push and history
// show a text's current state: see mergeState). The list is the same object
// when nothing changed.
export function mergeMessages(list, incoming, update = false) {
    let out = list;
    const added = [];
    for (const m of incoming) {
        if (!Number.isInteger(m.id) || m.id <= 0) continue;
        const i = findId(out, m.id);
        if (i >= 0) {
            if (!update) continue;
            const merged = mergeState(out[i], m);
            if (merged === out[i]) continue;
            if (out === list) out = list.slice();
            out[i] = merged;
            continue;
        }
        if (out === list) out = list.slice();
        out.splice(-i - 1, 0, m);
        added.push(m);
    }
    return [out, added];
}

const LIFECYCLE = ['reply_to', 'mentions', 'edited', 'deleted', 'by', 'reactions'];

// {emoji: [names]} from a frame, or undefined when it has none worth keeping.
function cleanReactions(r) {
    if (!r || typeof r !== 'object' || Array.isArray(r)) return undefined;
    const out = {};
    for (const [e, who] of Object.entries(r)) {
        const names = Array.isArray(who) ? [...new Set(who.filter((u) => typeof u === 'string'))] : [];
        if (e && names.length) out[e] = names;
    }
    return Object.keys(out).length ? out : undefined;
}

// A text frame's message: what the list keeps. Lifecycle fields only when
// the frame has them (a plain text stays {id, from, to, data, sent, cid}).
export function slim(f) {
    const m = { id: f.id, from: f.from, to: f.to, data: f.data, sent: f.sent, cid: f.cid };
    if (Number.isInteger(f.reply_to) && f.reply_to > 0) m.reply_to = f.reply_to;
    if (Array.isArray(f.mentions)) m.mentions = f.mentions.filter((u) => typeof u === 'string');
    if (Number.isInteger(f.edited) && f.edited > 0) m.edited = f.edited;
    if (Number.isInteger(f.deleted) && f.deleted > 0) {
        m.deleted = f.deleted;
        m.data = '';
        if (typeof f.by === 'string') m.by = f.by;
    } else {
        const r = cleanReactions(f.reactions);
        if (r) m.reactions = r;
    }
    return m;
}

function sameReactions(a, b) {
    const ka = Object.keys(a || {});
    if (ka.length !== Object.keys(b || {}).length) return false;
    return ka.every((e) => b[e] && b[e].length === a[e].length && a[e].every((u, i) => b[e][i] === u));
}

// A message held (old) and a copy of it showing the server's current state
// (m): a delete is final; the newer edit wins (by `edited`); the reactions
// are the copy's (none when it lists none); reply_to and mentions are kept
// from whichever has them. Returns old when nothing changes.
export function mergeState(old, m) {
    if (old.deleted) return old;
    const next = { ...old };
    if (m.deleted) {
        next.deleted = m.deleted;
        next.data = '';
        if (m.by) next.by = m.by;
        delete next.reactions;
    } else {
        if ((m.edited || 0) > (old.edited || 0)) {
            next.edited = m.edited;
            next.data = m.data;
        }
        if (!sameReactions(old.reactions, m.reactions)) {
            if (m.reactions) next.reactions = m.reactions;
            else delete next.reactions;
        }
    }
    if (m.reply_to && !old.reply_to) next.reply_to = m.reply_to;
    if (m.mentions && !old.mentions) next.mentions = m.mentions;
    const changed = LIFECYCLE.some((k) => next[k] !== old[k]) || next.data !== old.data;
    return changed ? next : old;
}

function previewOf(m) {
    return m.deleted ? { from: m.from, data: '', deleted: true } : { from: m.from, data: m.data };
}

function touch(conv, m) {
    if (m.sent < conv.lastActivity) return conv;
    const last = conv.messages.length ? conv.messages[conv.messages.length - 1] : null;
    if (last && last.id > m.id) return conv;
    return { ...conv, lastActivity: m.sent, preview: previewOf(m), previewId: m.id };
}

// A text of the outbox or an op, changed by fn (state as is when neither).
function changePending(state, cid, fn) {
    if (state.outbox[cid]) {
        const o = fn(state.outbox[cid]);
        return o === state.outbox[cid] ? state : { ...state, outbox: { ...state.outbox, [cid]: o } };
    }
    if (state.ops[cid]) {
        const o = fn(state.ops[cid]);
        return o === state.ops[cid] ? state : { ...state, ops: { ...state.ops, [cid]: o } };
    }
    return state;
}

function dropOp(state, cid) {
    if (!cid || !state.ops[cid]) return state;
    const ops = { ...state.ops };
    delete ops[cid];
    return { ...state, ops };
}

// A discarded op stops showing, but the server may have stored it (its
// ack late, or lost with the socket): kept (the newest DISCARDED_KEPT) so
// that a late ack still applies it; the page converges to the server's state.
const DISCARDED_KEPT = 32;
function discardOp(state, cid) {
    const o = cid && state.ops[cid];
    if (!o) return state;
    const kept = Object.entries(state.discarded || {}).slice(-(DISCARDED_KEPT - 1));
    return { ...dropOp(state, cid), discarded: { ...Object.fromEntries(kept), [cid]: o } };
}

function dropOutbox(state, cid) {
    if (!cid || !state.outbox[cid]) return state;
    const outbox = { ...state.outbox };
    delete outbox[cid];
    return { ...state, outbox };
}

function seeSeq(state, seq) {
    return Number.isInteger(seq) && seq > state.seq ? { ...state, seq } : state;
}

// Unread messages among those loaded, after the read position (deleted
// ones never count).
function countUnread(conv, me) {
    let n = 0;
    for (let i = conv.messages.length - 1; i >= 0 && conv.messages[i].id > conv.myRead; i--) {
        if (conv.messages[i].from !== me && !conv.messages[i].deleted) n++;
    }
    return n;
}

// Of those, the ones that mention this user.
function countMentions(conv, me) {
    let n = 0;
    for (let i = conv.messages.length - 1; i >= 0 && conv.messages[i].id > conv.myRead; i--) {
        const m = conv.messages[i];
        if (m.from !== me && !m.deleted && mentionsMe(m, me)) n++;
    }
    return n;
}

// ------------------------------------------------------------------ reducer

export function reduce(state, ev) {
    switch (ev.type) {
        case 'frame':
            return onFrame(state, ev.frame, ev.now ?? Date.now(), ev.mode);
        case 'send':
            return onSend(state, ev);
        case 'op': // an edit, delete or react of this page (ev.op: {kind, with, id, ...})
            return { ...state, ops: { ...state.ops, [ev.cid]: { ...ev.op, cid: ev.cid, created: ev.now, status: 'sending', error: null, tries: 0 } } };
        case 'retry':
            return changePending(state, ev.cid, (o) => ({ ...o, status: 'sending', error: null }));
        case 'sent': // handed to a socket (one more try)
            return changePending(state, ev.cid, (o) => ({ ...o, tries: o.tries + 1 }));
        case 'timeout':
            return changePending(state, ev.cid, (o) => (o.status !== 'sending' ? o : { ...o, status: 'failed', error: 'no answer from the server' }));
        case 'discard':
            return discardOp(dropOutbox(state, ev.cid), ev.cid);
        case 'mute': {
            if (!!state.muted[ev.key] === !!ev.on) return state;
            const muted = { ...state.muted };
            if (ev.on) muted[ev.key] = true;
            else delete muted[ev.key];
            return { ...state, muted };
        }
        case 'muted': // the page's saved list (prefs.js), after hello named the user
            return { ...state, muted: Object.fromEntries((ev.keys || []).filter((k) => typeof k === 'string').map((k) => [k, true])) };
        case 'open':
            return ev.key ? { ...withConv(state, ev.key, (c) => c), active: ev.key } : { ...state, active: null };
        case 'markRead': {
            // the UI shows the conversation up to its newest message
            const c = state.convs[ev.key];
            if (!c) return state;
            const upto = c.messages.length ? c.messages[c.messages.length - 1].id : 0;
            if (upto <= c.myRead && c.unread === 0 && c.mentions === 0) return state;
            return withConv(state, ev.key, (x) => ({ ...x, myRead: Math.max(x.myRead, upto), ...unreadParts(0, 0, 0), ...mentionParts(0, 0, 0) }));
        }
        case 'historyRequested':
            return withConv(state, ev.key, (c) => (ev.mode === 'older' ? { ...c, loadingOlder: true } : c));
        case 'historyFailed':
            return withConv(state, ev.key, (c) => (ev.mode === 'refresh' ? c : { ...c, loadingOlder: false, more: ev.mode === 'preview' ? c.more : false }));
        case 'expireTyping': {
            let changed = false;
            const convs = { ...state.convs };
            for (const [k, c] of Object.entries(state.convs)) {
                const live = Object.entries(c.typing).filter(([, until]) => until > ev.now);
                if (live.length !== Object.keys(c.typing).length) {
                    convs[k] = { ...c, typing: Object.fromEntries(live) };
                    changed = true;
                }
            }
            return changed ? { ...state, convs } : state;
        }
        case 'conn':
            return { ...state, conn: { ...state.conn, ...ev.conn } };
        case 'notice':
            return { ...state, notice: ev.text ? { text: ev.text, at: ev.now ?? Date.now() } : null };
        case 'wantOpen':
            return { ...state, wantOpen: ev.key };
        case 'addContact':
            return withConv(state, ev.key, (c) => (ev.online === undefined ? c : { ...c, online: ev.online && !state.blocked[ev.key], known: true }));
        case 'block': // this page blocked or unblocked someone (the frame is sent)
            return setBlocked(state, ev.user, ev.on);
        case 'forget': // a conversation the user no longer has (a group they were removed from)
            return forget(state, ev.key);
        case 'reset':
            return initialState();
        default:
            return state;
    }
}

function onSend(state, { cid, to, data, now, replyTo }) {
    const entry = { cid, to, data, created: now, status: 'sending', error: null, tries: 0 };
    if (Number.isInteger(replyTo) && replyTo > 0) entry.reply_to = replyTo;
    const s = { ...state, outbox: { ...state.outbox, [cid]: entry } };
    return withConv(s, to, (c) => {
        const next = { ...c, lastActivity: Math.max(c.lastActivity, now), preview: { from: state.me, data }, previewId: 0 };
        // who wrote the original: its quote names them even once it is no longer loaded
        const i = entry.reply_to ? findId(c.messages, entry.reply_to) : -1;
        if (i >= 0) next.authors = { ...(c.authors || {}), [entry.reply_to]: c.messages[i].from };
        return next;
    });
}

function onFrame(state, f, now, mode) {
    switch (f.kind) {
        case 'hello':
            return onHello(state, f);
        case 'users':
            return onUsers(state, f);
        case 'text':
            return onText(state, f);
        case 'edit':
        case 'delete':
        case 'react':
            return onLifecycle(state, f);
        case 'ack':
            return onAck(state, f);
        case 'error':
            return onError(state, f, now, mode);
        case 'online':
        case 'offline': {
            if (typeof f.from !== 'string' || f.from === state.me) return state;
            // no presence of someone this user blocks (the server sends none either)
            const on = f.kind === 'online' && !state.blocked[f.from];
            return withConv(state, f.from, (c) => (c.online === on && c.known ? c : { ...c, online: on, known: true }));
        }
        case 'block':
            // this user blocked/unblocked someone on another session
            if (typeof f.user !== 'string' || typeof f.on !== 'boolean') return state;
            return setBlocked(state, f.user, f.on);
        case 'read':
            return onRead(state, f);
        case 'typing': {
            if (typeof f.from !== 'string' || f.from === state.me || state.blocked[f.from]) return state;
            const key = typeof f.to === 'string' && f.to.startsWith('#') ? f.to : f.from;
            return withConv(state, key, (c) => ({ ...c, typing: { ...c.typing, [f.from]: now + 6000 } }));
        }
        case 'history':
            return onHistory(state, f, mode || 'initial');
        case 'sync':
            return onSync(state, f);
        case 'group':
            return onGroup(state, f, now);
        case 'gone':
            // an inbox entry the server can no longer show (its message left the history, or a
            // group this user left): nothing to display, but its seq was delivered
            return seeSeq(state, f.seq);
        default:
            return state;
    }
}

function onHello(state, f) {
    const first = state.epoch === null;
    const epochChanged = !first && f.epoch !== state.epoch;
    let convs = { ...state.convs };
    if (epochChanged) {
        // the inbox was lost: what we hold may have gaps; reload through history
        for (const k of Object.keys(convs)) convs[k] = { ...convs[k], historyLoaded: false };
    }
    // hello's `blocked` is the whole list (absent or empty: nobody)
    const blocked = {};
    for (const u of Array.isArray(f.blocked) ? f.blocked : []) if (typeof u === 'string') blocked[u] = true;
    convs = mergeEntries(convs, f.users, f.user, first, blocked);
    return {
        ...state,
        blocked,
        me: f.user,
        epoch: f.epoch,
        // a fresh page (or a lost inbox) starts from what hello says; a page
        // that reconnects keeps its own position and asks `sync` for the rest
        seq: first || epochChanged ? f.seq : state.seq,
        helloSeq: f.seq,
        helloFirst: first,
        convs,
        syncing: !first && !epochChanged,
    };
}

// hello's list entries (hello's own, and those of the `users` pages that
// follow a hello whose list was too long for it) merged into convs.
function mergeEntries(convs0, users, me, first, blocked = {}) {
    const convs = { ...convs0 };
    for (const u of Array.isArray(users) ? users : []) {
        if (!u || typeof u.username !== 'string' || u.username === me) continue;
        const c = convs[u.username] || newConv(u.username);
        const base = Number.isInteger(u.unread) && u.unread >= 0 ? u.unread : 0;
        // on a reconnect, what this page holds unread still counts (a server
        // without counts says 0; one with counts includes them)
        const held = first ? 0 : countUnread(c, me);
        // hello's `mentions` (0 omitted) like its unread count
        const mbase = Number.isInteger(u.mentions) && u.mentions >= 0 ? u.mentions : 0;
        const mheld = first ? 0 : countMentions(c, me);
        const next = {
            ...c,
            online: !!u.online && !blocked[u.username],
            joined: true,
            known: true,
            removed: null,
            ...unreadParts(base, held, 0),
            ...mentionParts(mbase, mheld, 0),
        };
        // a group's members and roles, when the server lists them with the entry
        if (next.group) Object.assign(next, groupFields(u, c));
        // Parley's hello extensions: own and peer read positions (when non-zero)
        if (Number.isInteger(u.read) && u.read > next.myRead) next.myRead = u.read;
        if (Number.isInteger(u.peer_read) && u.peer_read > next.peerRead) next.peerRead = u.peer_read;
        // Parley's hello extension `last`: the newest message (null: none), so
        // the list needs no history request per conversation for its preview
        if ('last' in u) {
            next.previewKnown = true;
            const m = u.last;
            if (m && Number.isInteger(m.id) && typeof m.from === 'string' && typeof m.data === 'string' && Number.isInteger(m.sent)) {
                const newest = next.messages.length ? next.messages[next.messages.length - 1] : null;
                if (!newest || newest.id <= m.id) {
                    // the current state: a deleted newest message has data ""
                    next.preview = Number.isInteger(m.deleted)
                        ? { from: m.from, data: '', deleted: true }
                        : { from: m.from, data: m.truncated ? `${m.data}…` : m.data };
                    next.previewId = m.id;
                    next.lastActivity = Math.max(next.lastActivity, m.sent);
                }
            }
        }
        convs[u.username] = next;
    }
    return convs;
}

// {kind:"users", users, more}: more of hello's list (Parley: hello carries a
// bounded number of entries, docs/protocol.md "Bounded reads").
function onUsers(state, f) {
    if (!state.me || !Array.isArray(f.users)) return state;
    return { ...state, convs: mergeEntries(state.convs, f.users, state.me, !!state.helloFirst, state.blocked) };
}

function onText(state, f) {
    if (!Number.isInteger(f.id) || typeof f.from !== 'string' || typeof f.to !== 'string') return seeSeq(state, f.seq);
    let s = seeSeq(state, f.seq);
    if (f.from === s.me) s = dropOutbox(s, f.cid);
    const key = convKey(s.me, f);
    const m = slim(f);
    return withConv(s, key, (c) => {
        // a copy of a text held already (sync, offline push) shows its current state
        const [messages, added] = mergeMessages(c.messages, [m], true);
        if (!added.length) return messages === c.messages ? c : withPreview({ ...c, messages }, m.id);
        let next = touch({ ...c }, m);
        next.messages = messages;
        if (f.from !== s.me) {
            if (next.refused && !next.group) next.refused = false;
            if (f.id > c.myRead && !m.deleted) {
                // hello's count covers every entry up to helloSeq: those that
                // come after it (offline push, sync) raise it only when the
                // server counted fewer (a server without counts says 0)
                const old = Number.isInteger(f.seq) && f.seq <= s.helloSeq;
                Object.assign(next, unreadParts(c.unreadBase, c.unreadOld + (old ? 1 : 0), c.unreadNew + (old ? 0 : 1)));
                if (mentionsMe(m, s.me)) Object.assign(next, mentionParts(c.mentionBase, c.mentionOld + (old ? 1 : 0), c.mentionNew + (old ? 0 : 1)));
            }
            if (next.typing[f.from]) {
                const typing = { ...next.typing };
                delete typing[f.from];
                next.typing = typing;
            }
        }
        return next;
    });
}

function onAck(state, f) {
    let s = seeSeq(state, f.seq);
    if (s.ops[f.cid]) return onOpAck(s, f);
    if (s.discarded && s.discarded[f.cid]) return onOpAck(s, f);
    const o = s.outbox[f.cid];
    if (!o || !Number.isInteger(f.id)) return s;
    s = dropOutbox(s, f.cid);
    const m = { id: f.id, from: s.me, to: o.to, data: o.data, sent: f.sent, cid: f.cid };
    if (o.reply_to) m.reply_to = o.reply_to;
    // the server sets a text's mentions from its first version, as the
    // contract reads it: this page read it the same way (its copies from the
    // server, sync or history, carry the server's list)
    const c0 = s.convs[o.to];
    const named = c0 ? mentionedNames(o.data, (n) => participants(c0, s.me).has(n)) : [];
    if (named.length) m.mentions = named;
    return withConv(s, o.to, (c) => {
        const [messages, added] = mergeMessages(c.messages, [m]);
        if (!added.length) return c;
        return { ...touch(c, m), messages, refused: false };
    });
}

// ------------------------------------------------------------------ lifecycle

// The preview follows the message it shows (id) when that one changes.
function withPreview(c, id) {
    if (!id || c.previewId !== id) return c;
    const i = findId(c.messages, id);
    return i < 0 ? c : { ...c, preview: previewOf(c.messages[i]) };
}

// Changes to one held message, each idempotent (a replay of the same change
// changes nothing): edit (the newer `edited` wins), delete (final), react
// (a set: on adds the name, off removes it).
export function applyEdit(m, data, edited) {
    if (m.deleted || typeof data !== 'string' || (m.edited || 0) > edited || (m.edited === edited && m.data === data)) return m;
    return { ...m, data, edited };
}

export function applyDelete(m, by, deleted) {
    if (m.deleted) return m;
    const next = { ...m, data: '', deleted };
    if (typeof by === 'string') next.by = by;
    delete next.reactions;
    return next;
}

export function applyReact(m, from, emoji, on) {
    if (m.deleted) return m;
    const who = (m.reactions && m.reactions[emoji]) || [];
    if (who.includes(from) === on) return m;
    const reactions = { ...(m.reactions || {}) };
    const list = on ? [...who, from] : who.filter((u) => u !== from);
    if (list.length) reactions[emoji] = list;
    else delete reactions[emoji];
    const next = { ...m, reactions };
    if (!Object.keys(reactions).length) delete next.reactions;
    return next;
}

// One message of conversation key changed by fn; a delete of a message this
// user has not read takes it off the counts. Messages not loaded change
// nothing but the preview when it shows them (their counts follow the next
// hello or read).
function changeMessage(state, key, id, fn) {
    return withConv(state, key, (c) => {
        const i = findId(c.messages, id);
        if (i < 0) {
            if (c.previewId !== id || !c.preview || c.preview.event) return c;
            const m = fn({ id, from: c.preview.from, data: c.preview.data, deleted: c.preview.deleted ? 1 : undefined });
            const gone = m.deleted && !c.preview.deleted;
            let next = { ...c, preview: m.deleted ? { from: c.preview.from, data: '', deleted: true } : { from: c.preview.from, data: m.data } };
            if (gone && c.preview.from !== state.me && id > c.myRead && c.unread > 0) next = { ...next, ...lessUnread(c) };
            return next;
        }
        const old = c.messages[i];
        const m = fn(old);
        if (m === old) return c;
        const messages = c.messages.slice();
        messages[i] = m;
        let next = withPreview({ ...c, messages }, id);
        if (m.deleted && !old.deleted && old.from !== state.me && id > c.myRead) {
            if (c.unread > 0) Object.assign(next, lessUnread(c));
            if (c.mentions > 0 && mentionsMe(old, state.me)) Object.assign(next, lessMentions(c));
        }
        return next;
    });
}

// edit {id, with, from, data, edited, seq}, delete {id, with, by, deleted,
// seq}, react {id, with, from, emoji, on, seq}: live, or replayed by sync /
// the offline push after the text they change. `with` names the
// conversation as this user does (the peer, or #group).
function onLifecycle(state, f) {
    const s = seeSeq(state, f.seq);
    if (!Number.isInteger(f.id) || typeof f.with !== 'string' || !s.me || !s.convs[f.with]) return s;
    if (f.kind === 'edit') {
        if (typeof f.data !== 'string' || !Number.isInteger(f.edited)) return s;
        return changeMessage(s, f.with, f.id, (m) => applyEdit(m, f.data, f.edited));
    }
    if (f.kind === 'delete') return changeMessage(s, f.with, f.id, (m) => applyDelete(m, f.by, Number.isInteger(f.deleted) ? f.deleted : 1));
    if (typeof f.from !== 'string' || typeof f.emoji !== 'string' || typeof f.on !== 'boolean') return s;
    return changeMessage(s, f.with, f.id, (m) => applyReact(m, f.from, f.emoji, f.on));
}

// The ack of this page's own edit/delete/react: stored; the acting session
// gets no frame of its own change, so the ack applies it (sent: the server
// time of the change).
function onOpAck(state, f) {
    const o = state.ops[f.cid] || state.discarded[f.cid];
    let s = dropOp(state, f.cid);
    if (s.discarded && s.discarded[f.cid]) {
        const discarded = { ...s.discarded };
        delete discarded[f.cid];
        s = { ...s, discarded };
    }
    const at = Number.isInteger(f.sent) ? f.sent : o.created;
    if (o.kind === 'edit') return changeMessage(s, o.with, o.id, (m) => applyEdit(m, o.data, at));
    if (o.kind === 'delete') return changeMessage(s, o.with, o.id, (m) => applyDelete(m, s.me, at));
    return changeMessage(s, o.with, o.id, (m) => applyReact(m, s.me, o.emoji, o.on));
}

const OP_WORDS_VERB = { edit: 'edit the message', delete: 'delete the message', react: 'react to the message' };

// An error with an op's cid: a transient one leaves it failed (re-sent on
// reconnect, or Retry); a refusal (forbidden, bad_field, ...) drops it,
// undoing what the page showed, and says why.
function onOpError(state, f, now) {
    const o = state.ops[f.cid];
    if (TRANSIENT.has(f.code)) return changePending(state, f.cid, (x) => ({ ...x, status: 'failed', error: f.code }));
    const why = f.code === 'forbidden' ? 'you are not allowed to' : f.code === 'bad_field' ? 'the server refused it' : f.code || 'error';
    const text = `Could not ${OP_WORDS_VERB[o.kind] || o.kind}: ${f.message || why}.`.replace(/\.\.$/, '.');
    return { ...dropOp(state, f.cid), notice: { text, code: f.code, at: now } };
}

// Errors that say the message was not stored, but may be retried as it is.
export const TRANSIENT = new Set(['unavailable', 'rate_limited']);

// mode: what connection.js tied an error without cid to: {op, name} (a group
// change this page asked for), {typing: to} (a typing notice; said
// nothing: a peer who blocks this user refuses them, and the text that follows
// says so), {quiet} (nothing to show: connection.js said it already), or
// undefined.
function onError(state, f, now, mode) {
    const text = `${f.message || f.code || 'error'}`;
    if (typeof f.cid === 'string' && state.ops[f.cid]) return onOpError(state, f, now);
    if (typeof f.cid === 'string' && state.outbox[f.cid]) {
        const o = state.outbox[f.cid];
        const s = {
            ...state,
            outbox: { ...state.outbox, [f.cid]: { ...o, status: 'failed', error: f.code || 'error', errorText: text } },
        };
        // a 1:1 peer who refuses this user's texts gets no typing notices either
        return f.code === 'forbidden' && !o.to.startsWith('#') ? withConv(s, o.to, (c) => (c.refused ? c : { ...c, refused: true })) : s;
    }
    // a kind this server does not speak yet is the connection's business
    // (connection.js stops asking), not something to show the user
    if (f.code === 'unknown_kind') return state;
    if (mode && mode.quiet) return state;
    if (mode && typeof mode.typing === 'string') {
        return f.code === 'forbidden' && !mode.typing.startsWith('#') ? withConv(state, mode.typing, (c) => (c.refused ? c : { ...c, refused: true })) : state;
    }
    if (mode && mode.op) return { ...state, notice: { text: groupErrorText(mode, f), code: f.code, at: now } };
    const head = f.code === 'forbidden' ? 'Not allowed' : 'Server';
    return { ...state, notice: { text: `${head}: ${text}`, code: f.code, at: now } };
}

const OP_WORDS = {
    create: 'create',
    join: 'join',
    leave: 'leave',
    add: 'add members to',
    remove: 'remove members from',
    promote: 'make admins in',
    demote: 'remove admins in',
};

// "Could not remove members from #team: only the owner and admins may remove members"
export function groupErrorText(mode, f) {
    const what = `Could not ${OP_WORDS[mode.op] || 'change'} ${mode.name}`;
    if (f.code === 'forbidden') return `${what}: ${f.message || 'you are not allowed to'}.`.replace(/\.\.$/, '.');
    if (f.code === 'rate_limited') return `${what}: too many changes, try again in a moment.`;
    return `${what}: ${f.message || f.code || 'error'}.`.replace(/\.\.$/, '.');
}

function onRead(state, f) {
    if (typeof f.from !== 'string' || typeof f.with !== 'string' || !Number.isInteger(f.upto)) return state;
    if (f.from === state.me) {
        // this user read it on another session (or this one: idempotent)
        return withConv(state, f.with, (c) => {
            const myRead = Math.max(c.myRead, f.upto);
            const next = { ...c, myRead };
            const last = c.messages.length ? c.messages[c.messages.length - 1].id : 0;
            return {
                ...next,
                ...unreadParts(0, 0, myRead >= last ? 0 : Math.min(c.unread, countUnread(next, state.me))),
                ...mentionParts(0, 0, myRead >= last ? 0 : Math.min(c.mentions, countMentions(next, state.me))),
            };
        });
    }
    if (f.with.startsWith('#')) {
        return withConv(state, f.with, (c) => ((c.readBy[f.from] || 0) >= f.upto ? c : { ...c, readBy: { ...c.readBy, [f.from]: f.upto } }));
    }
    return withConv(state, f.from, (c) => (c.peerRead >= f.upto ? c : { ...c, peerRead: f.upto }));
}

function onHistory(state, f, mode) {
    if (typeof f.with !== 'string') return state;
    const msgs = (Array.isArray(f.messages) ? f.messages : []).filter((m) => m && Number.isInteger(m.id)).map(slim);
    let s = state;
    for (const m of msgs) if (m.from === s.me) s = dropOutbox(s, m.cid);
    return withConv(s, f.with, (c) => {
        // a page shows each message's current state
        const [messages, added] = mergeMessages(c.messages, msgs, true);
        let next = { ...c, messages };
        const newest = messages.length ? messages[messages.length - 1] : null;
        if (newest && newest.sent >= c.lastActivity) next.lastActivity = newest.sent;
        if (newest) {
            next.preview = previewOf(newest);
            next.previewId = newest.id;
        }
        if (mode === 'older') {
            next.loadingOlder = false;
            next.more = !!f.more;
        } else if (mode === 'initial') {
            next.historyLoaded = true;
            if (c.more === null || !c.historyLoaded) next.more = !!f.more;
        }
        if (!added.length && messages === c.messages && next.lastActivity === c.lastActivity && mode === 'preview') return c;
        return next;
    });
}

function onSync(state, f) {
    if (f.recovered) return { ...seeSeq(state, f.seq), syncing: false };
    // gap the inbox cannot fill: reload what is shown through history
    const convs = {};
    for (const [k, c] of Object.entries(state.convs)) convs[k] = { ...c, historyLoaded: false };
    return { ...state, convs, syncing: false, seq: Number.isInteger(f.seq) ? f.seq : state.seq };
}

const ROLES = new Set(['owner', 'admin', 'member']);

// A group's members and roles from a frame or a hello entry: only what it
// carries (a server before roles sends no owner/admins: they stay unknown).
// A hello entry (Parley's extension) has owner (absent: the group has none
// yet), admins (at most 32; admins_more when cut) and role (this user's own),
// no members; a group frame has members, owner and every admin, no role.
function groupFields(f, c) {
    const names = (v) => (Array.isArray(v) ? v.filter((m) => typeof m === 'string') : null);
    const out = {};
    const members = names(f.members);
    if (members) out.members = members;
    if (typeof f.owner === 'string') out.owner = f.owner;
    const admins = names(f.admins);
    if (admins) out.admins = admins;
    else if (typeof f.owner === 'string' && c.admins === null) out.admins = [];
    if (admins || typeof f.owner === 'string') out.adminsMore = f.admins_more === true;
    if (ROLES.has(f.role)) out.myRole = f.role;
    if (typeof f.open === 'boolean') out.open = f.open;
    return out;
}

const GROUP_WORDS = {
    create: 'created the group',
    join: 'joined',
    leave: 'left',
    add: 'added members',
    remove: 'removed members',
    promote: 'named admins',
    demote: 'changed admins',
};

function onGroup(state, f, now) {
    if (typeof f.name !== 'string' || !f.name.startsWith('#')) return state;
    const fields = groupFields(f, state.convs[f.name] || newConv(f.name));
    const members = fields.members || null;
    const removed = Array.isArray(f.removed) ? f.removed : null;
    if (f.op === 'remove' && ((removed && removed.includes(state.me)) || (!removed && members && !members.includes(state.me)))) {
        // removed: the conversation stays, read-only, saying so; nothing of
        // the group comes after this frame
        if (!state.convs[f.name]) return state;
        return withConv(state, f.name, (c) => ({
            ...c,
            joined: false,
            removed: { by: typeof f.by === 'string' ? f.by : null },
            typing: {},
            online: false,
            lastActivity: Math.max(c.lastActivity, now),
            preview: { from: typeof f.by === 'string' ? f.by : 'Someone', data: 'removed you', event: true },
            previewId: 0,
        }));
    }
    const gone = (f.op === 'leave' && f.by === state.me) || (members && !members.includes(state.me));
    if (gone) return forget(state, f.name);
    const what = GROUP_WORDS[f.op] || 'changed the group';
    const s = state.wantOpen === f.name ? { ...state, wantOpen: null, active: f.name } : state;
    return withConv(s, f.name, (c) => {
        const next = { ...c, ...fields, group: true, joined: true, removed: null };
        next.lastActivity = Math.max(c.lastActivity, now);
        if (!(c.messages.length && c.lastActivity > now - 1000)) {
            next.preview = { from: f.by, data: what, event: true };
            next.previewId = 0;
        }
        return next;
    });
}

function forget(state, key) {
    if (!state.convs[key]) return state;
    const convs = { ...state.convs };
    delete convs[key];
    return { ...state, convs, active: state.active === key ? null : state.active };
}

function setBlocked(state, user, on) {
    if (!!state.blocked[user] === on) return state;
    const blocked = { ...state.blocked };
    if (on) blocked[user] = true;
    else delete blocked[user];
    const s = { ...state, blocked };
    if (!state.convs[user]) return s;
    // blocking hides presence both ways; after an unblock it is looked up
    // again (known: false makes the page ask /api/users)
    return withConv(s, user, (c) => (on ? { ...c, online: false, typing: {} } : { ...c, known: false }));
}

// ------------------------------------------------------------------ selectors

// Conversations for the list: most recent activity first, then unread, then name.
export function conversationList(state) {
    return Object.values(state.convs)
        .filter((c) => c.key !== state.me)
        .sort((a, b) => b.lastActivity - a.lastActivity || b.unread - a.unread || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function totalUnread(state) {
    let n = 0;
    for (const c of Object.values(state.convs)) n += c.unread;
    return n;
}

export function titleFor(state, base = 'Parley') {
    const n = totalUnread(state);
    return n > 0 ? `(${n}) ${base}` : base;
}

// Own messages of a conversation that are not acknowledged yet, oldest first.
export function pendingFor(state, key) {
    return Object.values(state.outbox)
        .filter((o) => o.to === key)
        .sort((a, b) => a.created - b.created);
}

// What to send again after a (re)connect: everything not acknowledged that
// was not refused for good, oldest first.
export function resendList(state) {
    return Object.values(state.outbox)
        .filter((o) => o.status === 'sending' || TRANSIENT.has(o.error) || o.error === 'no answer from the server')
        .sort((a, b) => a.created - b.created);
}

// What to send again after a (re)connect among edits/deletes/reactions, as
// for texts, oldest first.
export function resendOps(state) {
    return Object.values(state.ops)
        .filter((o) => o.status === 'sending' || TRANSIENT.has(o.error) || o.error === 'no answer from the server')
        .sort((a, b) => a.created - b.created);
}

// The ops of a conversation not acknowledged yet, by message id, oldest
// first: {id: [op, ...]}.
export function opsFor(state, key) {
    const out = {};
    for (const o of Object.values(state.ops).sort((a, b) => a.created - b.created)) {
        if (o.with !== key) continue;
        (out[o.id] = out[o.id] || []).push(o);
    }
    return out;
}

// A message as the page shows it: held state with this page's own pending
// ops on top (an edit shows its new text, a delete the placeholder, a
// reaction as made); pending: the newest op still waiting (or failed).
export function shownMessage(m, ops, me) {
    if (!ops || !ops.length) return m;
    let v = m;
    for (const o of ops) {
        if (o.kind === 'edit') v = v.deleted ? v : { ...v, data: o.data, edited: v.edited || 1 };
        else if (o.kind === 'delete') v = applyDelete(v, me, v.deleted || 1);
        else v = applyReact(v, me, o.emoji, o.on);
    }
    return { ...v, pendingOp: ops[ops.length - 1] };
}

// The quoted original of a reply: {id, from, data, deleted} when held,
// {id, missing: true} when not (not loaded, or older than what is held).
export function replyPreview(conv, id) {
    if (!conv || !Number.isInteger(id)) return null;
    const i = findId(conv.messages, id);
    if (i < 0) {
        // the author, when known: an original this page answered, or the one the list's preview shows
        const from = (conv.authors && conv.authors[id]) || (conv.previewId === id && conv.preview && conv.preview.from) || null;
        return from ? { id, missing: true, from } : { id, missing: true };
    }
    const m = conv.messages[i];
    return { id, from: m.from, data: m.data, deleted: !!m.deleted };
}

// The newest own message that may be edited (ArrowUp in an empty composer).
export function lastOwnMessage(conv, me) {
    if (!conv) return null;
    for (let i = conv.messages.length - 1; i >= 0; i--) {
        const m = conv.messages[i];
        if (m.from === me && !m.deleted) return m;
    }
    return null;
}

// Whether me may delete m in conv: the author; in a group also its owner and
// admins (as the server will judge it; a refusal is `error forbidden`).
export function canDelete(conv, m, me) {
    if (!m || m.deleted) return false;
    if (m.from === me) return true;
    if (!conv || !conv.group || conv.removed) return false;
    const role = roleOf(conv, me, me);
    return role === 'owner' || role === 'admin';
}

// Names `@` may complete in conv: the peer (1:1), or the group's members
// (when a group frame listed them; else everyone the page knows in it:
// owner, admins, authors), this user left out.
export function mentionCandidates(conv, me) {
    if (!conv) return [];
    if (!conv.group) return [conv.key];
    const names = new Set(conv.members || []);
    if (!conv.members) {
        if (conv.owner) names.add(conv.owner);
        for (const a of conv.admins || []) names.add(a);
        for (const m of conv.messages) names.add(m.from);
    }
    names.delete(me);
    return [...names].sort();
}

// Whether a name is a participant of conv, for highlighting mentions (a
// message's own `mentions` count too, whoever the page knows).
export function participants(conv, me) {
    const set = new Set(mentionCandidates(conv, me));
    if (me) set.add(me);
    return set;
}

// Which `@name` of a message to highlight as a mention, so that the
// highlight agrees with the counts and notifications: the server keeps a
// text's `mentions` as its first version set them (an edit changes
// neither them nor the counts). A message with `mentions`: those names
// only; an edited one without: none (its first version mentioned nobody);
// otherwise (a text not stored yet, or from a server without mentions) the
// participants. Returns name -> boolean.
export function mentionTest(m, names) {
    if (Array.isArray(m.mentions)) return (n) => m.mentions.includes(n);
    if (m.edited && !m.pending) return () => false;
    return (n) => names.has(n);
}

// A browser notification for a live text frame, or null: a message from
// someone else, new to this page (not held yet, newer than hello: no
// replays), in a conversation not muted, either 1:1 or mentioning this user.
// state: the state before the frame. The caller checks the tab is hidden
// and the permission granted. {title, body, tag, key}
export function notificationFor(state, f) {
    if (!f || f.kind !== 'text' || !state.me || typeof f.from !== 'string' || typeof f.to !== 'string') return null;
    if (f.from === state.me || !Number.isInteger(f.id) || f.deleted) return null;
    if (!Number.isInteger(f.seq) || f.seq <= state.helloSeq || state.syncing) return null;
    const key = convKey(state.me, f);
    if (state.muted[key] || state.blocked[f.from]) return null;
    const c = state.convs[key];
    if (c && findId(c.messages, f.id) >= 0) return null;
    const group = key.startsWith('#');
    const mentioned = Array.isArray(f.mentions) && f.mentions.includes(state.me);
    if (group && !mentioned) return null;
    const body = typeof f.data === 'string' ? (f.data.length > 200 ? `${f.data.slice(0, 200)}…` : f.data) : '';
    return { title: group ? `${f.from} mentioned you in ${key}` : mentioned ? `${f.from} mentioned you` : f.from, body, tag: `parley-${f.id}`, key };
}

// 'read' | 'sent' for an own confirmed message.
export function receiptOf(conv, m) {
    if (conv.group) return Object.values(conv.readBy).some((u) => u >= m.id) ? 'read' : 'sent';
    return conv.peerRead >= m.id ? 'read' : 'sent';
}

// The `sync` frame to send after a hello on a reconnect, or null.
export function syncFrame(state) {
    if (!state.syncing || !state.epoch) return null;
    return { kind: 'sync', after: state.seq, epoch: state.epoch };
}

// The `read` frame for a conversation being looked at, or null: only when a
// message from someone else is newer than the read position (or the server
// counts some unread), upto the newest message shown.
export function readFrame(state, key) {
    const c = state.convs[key];
    if (!c || !c.messages.length) return null;
    const upto = c.messages[c.messages.length - 1].id;
    let incoming = 0;
    for (let i = c.messages.length - 1; i >= 0; i--) {
        if (c.messages[i].from !== state.me) {
            incoming = c.messages[i].id;
            break;
        }
    }
    if (incoming <= c.myRead && c.unread === 0) return null;
    return { kind: 'read', with: key, upto };
}

export function typingNames(conv, now) {
    return Object.entries(conv.typing)
        .filter(([, until]) => until > now)
        .map(([u]) => u);
}

// ------------------------------------------------------------------ groups

// 'owner' | 'admin' | 'member' | null (roles unknown: a server before roles,
// a group that has no owner yet, or, when hello listed only some admins,
// anyone not listed but this user, whose own role hello's `role` says).
// me: this user (state.me).
export function roleOf(conv, name, me = null) {
    if (!conv || !conv.group || conv.owner === null) return null;
    if (conv.owner === name) return 'owner';
    if ((conv.admins || []).includes(name)) return 'admin';
    if (!conv.adminsMore) return 'member';
    return name === me && conv.myRole ? conv.myRole : null;
}

// What `me` may do in a group, as the server will judge it (docs/protocol.md
// "Group roles"): the UI shows only these controls; the server still decides
// (a refusal is `error forbidden`).
export function groupRights(conv, me) {
    const none = { add: false, promote: false, remove: () => false, known: false };
    if (!conv || !conv.group || conv.removed || !conv.joined) return none;
    const role = roleOf(conv, me, me);
    if (role === null) return { ...none, add: true }; // roles unknown: any member could add (v1)
    const boss = role === 'owner' || role === 'admin';
    return {
        known: true,
        // in a closed group only the owner and admins add; in an open one anyone
        add: boss || !!conv.open,
        promote: role === 'owner',
        // the owner removes anyone else; an admin removes plain members
        remove: (target) => target !== me && (role === 'owner' || (role === 'admin' && roleOf(conv, target, me) === 'member')),
    };
}
