// ChatPane: one conversation. Header (presence / members, typing; Mute;
// Block / Unblock for a person; Members, Add, Leave for a group), the member
// list with roles and the controls this user's role allows (make/remove
// admin, remove), the message list (day separators, timestamps, own message
// status with retry, read receipts, older history on scroll-up, auto-scroll
// unless the reader scrolled up; per message: mentions highlighted, the
// quoted original of a reply (a click jumps to it), "edited", "message
// deleted", reactions with who made them, and actions: React, Reply, Edit
// inline (own), Delete (own; in a group also the owner's and admins'),
// beside the bubble on hover or focus, under it when the message is
// selected by a tap or click (touch screens have no hover)) and
// the composer (Enter sends, Shift+Enter is a new line, `@` completes member
// names, ArrowUp in it empty edits the last own message, Escape cancels an
// edit or a reply), replaced by a note when the peer is blocked or this user
// was removed from the group.
import { useEffect, useEffectEvent, useLayoutEffect, useRef, useState } from 'react';
import { completeMention, completions, mentionQuery, mentionSpans } from '../lib/mentions.js';
import { isUserName } from '../lib/names.js';
import {
    canDelete,
    groupRights,
    lastOwnMessage,
    mentionCandidates,
    mentionTest,
    opsFor,
    participants,
    pendingFor,
    receiptOf,
    replyPreview,
    roleOf,
    shownMessage,
    typingNames,
} from '../lib/store.js';
import { formatTime, groupByDay } from '../lib/time.js';
import Avatar from './Avatar.jsx';

const btn = 'rounded-md px-2.5 py-1.5 text-sm font-medium focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600';
const NEAR = 48; // px from the bottom that still counts as "at the bottom"

export default function ChatPane({ className, state, conv, conn, dispatch, onBack, onBottom, onMute }) {
    if (!conv) {
        return (
            <section className={`${className} flex-1 items-center justify-center text-slate-400`} aria-label="Chat">
                <p>Pick a conversation, or find someone to talk to.</p>
            </section>
        );
    }
    return <Pane key={conv.key} {...{ className, state, conv, conn, dispatch, onBack, onBottom, onMute }} />;
}

function Pane({ className, state, conv, conn, dispatch, onBack, onBottom, onMute }) {
    // eslint-disable-next-line react-hooks/purity -- typing shows for 6 s after its frame: as of this render, on purpose (see Chat's expireTyping)
    const typing = typingNames(conv, Date.now());
    const pending = pendingFor(state, conv.key);
    const [panel, setPanel] = useState(null); // null | 'add' | 'members' | 'block'
    const toggle = (p) => setPanel(panel === p ? null : p);
    const blocked = !conv.group && !!state.blocked[conv.key];
    const rights = groupRights(conv, state.me);
    const muted = !!state.muted[conv.key];
    const [editing, setEditing] = useState(null); // id of the own message being edited inline
    const [replyTo, setReplyTo] = useState(null); // id of the message the composer answers
    const [jump, setJump] = useState(null); // id of an original to scroll to (a reply's quote clicked)
    const editLast = () => {
        const m = lastOwnMessage(conv, state.me);
        if (m) setEditing(m.id);
    };
    const done = () => {
        setEditing(null);
        const box = document.getElementById('composer');
        if (box) box.focus();
    };
    let status;
    if (conv.removed) status = <span data-testid="removed-status">You are no longer a member</span>;
    else if (blocked) status = <span data-testid="presence">Blocked</span>;
    else if (typing.length)
        status = (
            <span className="text-indigo-600" data-testid="typing">
                {conv.group ? `${typing.join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…` : 'typing…'}
            </span>
        );
    else if (conv.group)
        status = conv.members
            ? `${conv.members.length} member${conv.members.length === 1 ? '' : 's'}${conv.open ? ' · open' : ''}: ${conv.members.join(', ')}`
            : 'Group';
    else status = <span data-testid="presence">{conv.online ? 'Online' : 'Offline'}</span>;

    let footer;
    if (conv.removed) footer = <Removed conv={conv} dispatch={dispatch} />;
    else if (blocked) footer = <BlockedNote conv={conv} conn={conn} />;
    else footer = <Composer conv={conv} conn={conn} me={state.me} replyTo={replyTo} onCancelReply={() => setReplyTo(null)} onEditLast={editLast} />;

    return (
        <section className={`${className} min-w-0 flex-1 flex-col`} aria-label={`Chat with ${conv.key}`}>
            <header className="flex items-center gap-3 border-b border-slate-200 px-3 py-2.5 sm:px-4">
                <button onClick={onBack} className={`${btn} text-slate-600 hover:bg-slate-100 md:hidden`} aria-label="Back to conversations">
                    ←
                </button>
                <Avatar name={conv.key} online={conv.online} />
                <div className="min-w-0 flex-1">
                    <h2 className="truncate font-semibold text-slate-900" data-testid="chat-title">
                        {conv.key}
                    </h2>
                    <p className="truncate text-xs text-slate-500" aria-live="polite">
                        {status}
                    </p>
                </div>
                <button
                    className={`${btn} ${muted ? 'text-amber-700 hover:bg-amber-50' : 'text-slate-600 hover:bg-slate-100'}`}
                    aria-pressed={muted}
                    data-testid="mute-button"
                    title={muted ? 'Notifications from this conversation are off' : 'Turn off notifications from this conversation'}
                    onClick={() => onMute && onMute(conv.key, !muted)}
                >
                    {muted ? 'Unmute' : 'Mute'}
                </button>
                {conv.group && !conv.removed && (
                    <div className="flex gap-1">
                        <button className={`${btn} text-slate-600 hover:bg-slate-100`} aria-expanded={panel === 'members'} onClick={() => toggle('members')}>
                            Members
                        </button>
                        {rights.add && (
                            <button className={`${btn} text-slate-600 hover:bg-slate-100`} aria-expanded={panel === 'add'} onClick={() => toggle('add')}>
                                Add
                            </button>
                        )}
                        <button className={`${btn} text-red-600 hover:bg-red-50`} onClick={() => conn && conn.group('leave', conv.key)}>
                            Leave
                        </button>
                    </div>
                )}
                {!conv.group &&
                    (blocked ? (
                        <button className={`${btn} text-indigo-700 hover:bg-indigo-50`} onClick={() => conn && conn.block(conv.key, false)}>
                            Unblock
                        </button>
                    ) : (
                        <button className={`${btn} text-slate-600 hover:bg-slate-100`} aria-expanded={panel === 'block'} onClick={() => toggle('block')}>
                            Block
                        </button>
                    ))}
            </header>
            {panel === 'add' && rights.add && !conv.removed && <AddMembers conv={conv} conn={conn} onDone={() => setPanel(null)} />}
            {panel === 'members' && conv.group && !conv.removed && <Members conv={conv} me={state.me} conn={conn} />}
            {panel === 'block' && !conv.group && !blocked && <ConfirmBlock conv={conv} conn={conn} onDone={() => setPanel(null)} />}
            <Messages
                state={state}
                conv={conv}
                pending={pending}
                conn={conn}
                dispatch={dispatch}
                onBottom={onBottom}
                editing={editing}
                onEdit={(id) => (id === null ? done() : setEditing(id))}
                onReply={(id) => {
                    setEditing(null);
                    setReplyTo(id);
                }}
                jump={jump}
                onJump={setJump}
            />
            {footer}
        </section>
    );
}

const ROLE_LABEL = { owner: 'Owner', admin: 'Admin' };

// The member list of a group: each member's role, and the controls this
// user's role allows (groupRights): the owner makes and removes admins and
// removes anyone; an admin removes plain members. Removing asks first.
// Until a group frame lists the members (after a reload, hello says only the
// owner, the admins and this user's role), the people known are shown.
function Members({ conv, me, conn }) {
    const [confirm, setConfirm] = useState(null); // a name to remove
    const rights = groupRights(conv, me);
    const order = { owner: 0, admin: 1, member: 2 };
    const known = conv.members || [...new Set([conv.owner, ...(conv.admins || []), me].filter((m) => typeof m === 'string'))];
    const members = [...known].sort((a, b) => (order[roleOf(conv, a, me)] ?? 2) - (order[roleOf(conv, b, me)] ?? 2) || (a < b ? -1 : a > b ? 1 : 0));
    return (
        <div className="max-h-64 overflow-y-auto border-b border-slate-200 bg-slate-50 px-4 py-2" data-testid="members">
            {!conv.members && (
                <p className="text-sm text-slate-500" data-testid="members-partial">
                    {conv.adminsMore ? 'The owner, some admins and you' : conv.owner !== null ? 'The owner, the admins and you' : 'You'}; the other members are
                    listed after the group's next change.
                </p>
            )}
            <ul aria-label={`Members of ${conv.key}`}>
                {members.map((m) => {
                    const role = roleOf(conv, m, me);
                    return (
                        <li key={m} className="flex flex-wrap items-center gap-2 py-1 text-sm" data-testid="member" data-name={m} data-role={role || undefined}>
                            <Avatar name={m} size="h-6 w-6" showStatus={false} />
                            <span className="flex-1 truncate">
                                {m}
                                {m === me && <span className="text-slate-400"> (you)</span>}
                                {ROLE_LABEL[role] && (
                                    <span
                                        className={`ml-2 rounded px-1.5 py-0.5 text-xs font-medium ${role === 'owner' ? 'bg-amber-100 text-amber-800' : 'bg-indigo-100 text-indigo-800'}`}
                                        data-testid="role"
                                    >
                                        {ROLE_LABEL[role]}
                                    </span>
                                )}
                            </span>
                            {confirm === m ? (
                                <span className="flex items-center gap-1" role="group" aria-label={`Confirm removing ${m}`}>
                                    <span className="text-xs text-red-800">Remove {m}?</span>
                                    <button
                                        className={`${btn} bg-red-600 text-white hover:bg-red-700`}
                                        onClick={() => {
                                            conn && conn.group('remove', conv.key, { members: [m] });
                                            setConfirm(null);
                                        }}
                                    >
                                        Remove
                                    </button>
                                    <button className={`${btn} text-slate-600 hover:bg-slate-200`} onClick={() => setConfirm(null)}>
                                        Cancel
                                    </button>
                                </span>
                            ) : (
                                <span className="flex gap-1">
                                    {rights.promote && role === 'member' && (
                                        <button
                                            className={`${btn} text-indigo-700 hover:bg-indigo-50`}
                                            aria-label={`Make ${m} an admin`}
                                            onClick={() => conn && conn.group('promote', conv.key, { members: [m] })}
                                        >
                                            Make admin
                                        </button>
                                    )}
                                    {rights.promote && role === 'admin' && (
                                        <button
                                            className={`${btn} text-slate-700 hover:bg-slate-200`}
                                            aria-label={`Remove ${m} as admin`}
                                            onClick={() => conn && conn.group('demote', conv.key, { members: [m] })}
                                        >
                                            Remove admin
                                        </button>
                                    )}
                                    {rights.remove(m) && (
                                        <button
                                            className={`${btn} text-red-700 hover:bg-red-50`}
                                            aria-label={`Remove ${m} from ${conv.key}`}
                                            onClick={() => setConfirm(m)}
                                        >
                                            Remove
                                        </button>
                                    )}
                                </span>
                            )}
                        </li>
                    );
                })}
            </ul>
        </div>
    );
}

function ConfirmBlock({ conv, conn, onDone }) {
    return (
        <div
            className="flex flex-wrap items-center gap-2 border-b border-slate-200 bg-slate-50 px-4 py-2 text-sm"
            role="group"
            aria-label={`Block ${conv.key}`}
        >
            <span className="flex-1 text-slate-700">Block {conv.key}? They will not be able to message you, add you to groups or see when you are online.</span>
            <button
                className={`${btn} bg-red-600 text-white hover:bg-red-700`}
                onClick={() => {
                    conn && conn.block(conv.key, true);
                    onDone();
                }}
            >
                Block {conv.key}
            </button>
            <button className={`${btn} text-slate-600 hover:bg-slate-200`} onClick={onDone}>
                Cancel
            </button>
        </div>
    );
}

function BlockedNote({ conv, conn }) {
    return (
        <div className="flex flex-wrap items-center gap-2 border-t border-slate-200 bg-slate-50 px-4 py-3 text-sm text-slate-700" data-testid="blocked-note">
            <span className="flex-1">You blocked {conv.key}. They cannot message you or see when you are online.</span>
            <button className={`${btn} bg-indigo-600 text-white hover:bg-indigo-700`} onClick={() => conn && conn.block(conv.key, false)}>
                Unblock to send messages
            </button>
        </div>
    );
}

function Removed({ conv, dispatch }) {
    return (
        <div
            className="flex flex-wrap items-center gap-2 border-t border-slate-200 bg-amber-50 px-4 py-3 text-sm text-amber-900"
            role="status"
            data-testid="removed-note"
        >
            <span className="flex-1">
                {conv.removed.by ? `${conv.removed.by} removed you from ${conv.key}.` : `You were removed from ${conv.key}.`} You no longer get its messages.
            </span>
            <button className={`${btn} text-amber-900 underline hover:bg-amber-100`} onClick={() => dispatch({ type: 'forget', key: conv.key })}>
                Remove from the list
            </button>
        </div>
    );
}

function Messages({ state, conv, pending, conn, dispatch, onBottom, editing, onEdit, onReply, jump, onJump }) {
    const box = useRef(null);
    const prev = useRef({ first: null, last: null, height: 0, pending: 0 });
    const [atBottom, setAtBottom] = useState(true);
    const [unseen, setUnseen] = useState(false);
    const [flash, setFlash] = useState(null); // id of the original a reply jumped to, highlighted a moment
    const [selected, setSelected] = useState(null); // id of the message tapped or clicked: its actions and who reacted shown
    const msgs = conv.messages;
    const first = msgs.length ? msgs[0].id : null;
    const last = msgs.length ? msgs[msgs.length - 1].id : null;
    const ops = opsFor(state, conv.key);
    const blocked = !conv.group && !!state.blocked[conv.key];

    const near = () => {
        const el = box.current;
        return !el || el.scrollHeight - el.scrollTop - el.clientHeight < NEAR;
    };

    // keep the view where the reader wants it when messages come and go:
    // looked at when the first or last message or the pending ones change
    const keepView = useEffectEvent(() => {
        const el = box.current;
        const p = prev.current;
        if (!el) return;
        const ownNew = pending.length > p.pending || (msgs.length && msgs[msgs.length - 1].from === state.me && last !== p.last);
        if (p.first !== null && first !== null && first < p.first && last === p.last) {
            el.scrollTop += el.scrollHeight - p.height; // older page prepended: stay put
        } else if (p.last === null || atBottom || ownNew) {
            el.scrollTop = el.scrollHeight;
            setUnseen(false);
        } else if (last !== p.last) {
            setUnseen(true);
        }
        prev.current = { first, last, height: el.scrollHeight, pending: pending.length };
    });
    const pendingStatus = pending.map((o) => o.status).join();
    useLayoutEffect(() => {
        keepView();
    }, [first, last, pending.length, pendingStatus]);

    // the last message growing (a reaction, an edit, its actions or picker
    // shown): a view at the bottom stays there, as for a new message
    useEffect(() => {
        const el = box.current;
        const rows = el ? el.querySelectorAll('[data-testid=msg]') : [];
        const row = rows[rows.length - 1];
        if (!row || typeof ResizeObserver === 'undefined') return;
        let height = row.offsetHeight;
        const ro = new ResizeObserver(() => {
            const grown = row.offsetHeight - height;
            height = row.offsetHeight;
            if (grown > 0 && el.scrollHeight - el.scrollTop - el.clientHeight - grown < NEAR) el.scrollTop = el.scrollHeight;
        });
        ro.observe(row);
        return () => ro.disconnect();
    }, [last, pending.length]);

    // a selected message (tapped: phones have no hover) is unselected by
    // Escape or a tap anywhere outside it
    useEffect(() => {
        if (selected === null) return;
        const onKey = (e) => e.key === 'Escape' && setSelected(null);
        const onDown = (e) => {
            if (!(e.target instanceof Element) || !e.target.closest(`[data-testid=msg][data-id="${selected}"]`)) setSelected(null);
        };
        document.addEventListener('keydown', onKey);
        document.addEventListener('pointerdown', onDown);
        return () => {
            document.removeEventListener('keydown', onKey);
            document.removeEventListener('pointerdown', onDown);
        };
    }, [selected]);

    // a short conversation that does not fill the pane: fetch older at once
    useEffect(() => {
        const el = box.current;
        if (el && conv.historyLoaded && conv.more && !conv.loadingOlder && el.scrollHeight <= el.clientHeight + 8 && first)
            conn && conn.requestHistory(conv.key, 'older', first);
    }, [conv.historyLoaded, conv.more, conv.loadingOlder, first, conn, conv.key]);

    // a reply's quote was clicked: scroll to the original and highlight it;
    // older pages are loaded until it is there (or the start is reached)
    const seek = useEffectEvent(() => {
        const el = box.current;
        if (!el || jump === null) return;
        const target = el.querySelector(`[data-testid=msg][data-id="${jump}"]`);
        if (target) {
            target.scrollIntoView({ block: 'center' });
            setFlash(jump);
            onJump(null);
        } else if (conv.more && !conv.loadingOlder && first && conn) {
            conn.requestHistory(conv.key, 'older', first);
        } else if (!conv.more && !conv.loadingOlder) {
            dispatch({ type: 'notice', text: 'The original message is no longer in the history.' });
            onJump(null);
        }
    });
    useEffect(() => {
        seek();
    }, [jump, first, conv.loadingOlder, conv.more]);
    useEffect(() => {
        if (flash === null) return;
        const t = setTimeout(() => setFlash(null), 2500);
        return () => clearTimeout(t);
    }, [flash]);

    useEffect(() => {
        onBottom(atBottom);
    }, [atBottom, onBottom]);

    const onScroll = () => {
        const el = box.current;
        const b = near();
        if (b !== atBottom) setAtBottom(b);
        if (b) setUnseen(false);
        if (el.scrollTop < 80 && conv.more && !conv.loadingOlder && first && conn) conn.requestHistory(conv.key, 'older', first);
    };

    const days = groupByDay(
        [...msgs.map((m) => shownMessage(m, ops[m.id], state.me)), ...pending.map((o) => ({ ...o, pending: true, from: state.me, sent: o.created }))],
        // eslint-disable-next-line react-hooks/purity -- "Today" / "Yesterday" are as of this render, on purpose
        Date.now(),
    );
    const names = participants(conv, state.me);
    const acts = {
        canAct: !conv.removed && !blocked,
        onEdit,
        onReply,
        onJump,
        onSelect: setSelected,
        op: (o) => conn && conn.sendOp({ ...o, with: conv.key }),
    };
    return (
        <div className="relative min-h-0 flex-1">
            <div
                ref={box}
                onScroll={onScroll}
                tabIndex={0}
                className="h-full overflow-x-hidden overflow-y-auto bg-slate-50 px-3 py-3 focus-visible:outline-2 focus-visible:outline-indigo-500 sm:px-5"
                role="log"
                aria-label="Messages"
                data-testid="messages"
            >
                {conv.loadingOlder && <p className="py-2 text-center text-xs text-slate-400">Loading older messages…</p>}
                {conv.historyLoaded && conv.more === false && msgs.length > 0 && (
                    <p className="py-2 text-center text-xs text-slate-400" data-testid="history-start">
                        Start of the conversation
                    </p>
                )}
                {days.map((d) => (
                    <div key={d.day}>
                        <div className="my-3 flex items-center gap-3" role="separator" data-testid="day-separator">
                            <span className="h-px flex-1 bg-slate-200" />
                            <span className="text-xs font-medium text-slate-500">{d.label}</span>
                            <span className="h-px flex-1 bg-slate-200" />
                        </div>
                        {d.items.map((m) => (
                            <Bubble
                                key={m.pending ? `p-${m.cid}` : m.id}
                                m={m}
                                conv={conv}
                                me={state.me}
                                conn={conn}
                                dispatch={dispatch}
                                names={names}
                                editing={!m.pending && editing === m.id}
                                selected={!m.pending && selected === m.id}
                                flash={!m.pending && flash === m.id}
                                acts={acts}
                            />
                        ))}
                    </div>
                ))}
            </div>
            {unseen && (
                <button
                    className="absolute bottom-3 left-1/2 -translate-x-1/2 rounded-full bg-indigo-600 px-3 py-1 text-xs font-medium text-white shadow focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-700"
                    onClick={() => {
                        box.current.scrollTop = box.current.scrollHeight;
                        setUnseen(false);
                    }}
                >
                    New messages ↓
                </button>
            )}
        </div>
    );
}

const FAIL_REASONS = {
    unavailable: 'the server could not store it',
    rate_limited: 'sending too fast',
    no_such_user: 'no such user',
    forbidden: 'not allowed here',
    bad_field: 'the server refused it',
    too_large: 'too long',
};
// forbidden in 1:1: the peer does not accept this user's messages (the
// server says no more, on purpose); in a group: not (or no longer) a member
const failReason = (code, conv) => {
    if (code === 'forbidden') return conv.group ? `you are not a member of ${conv.key}` : `${conv.key} is not accepting your messages`;
    return FAIL_REASONS[code] || code || 'unknown error';
};

// the reaction picker's choices (any emoji of 1..32 bytes would do)
export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const OP_PENDING = { edit: 'Saving…', delete: 'Deleting…', react: 'Reacting…' };
// a failed op's line: the bubble shows the change as made (the server may
// have stored it: its answer did not come), so the words say it is not
// confirmed, not that it did not happen
const OP_NOUN = { edit: 'edit', delete: 'delete', react: 'reaction' };
const opFailText = (op, conv) =>
    op.error === 'no answer from the server'
        ? `No answer yet to this ${OP_NOUN[op.kind] || op.kind}`
        : `This ${OP_NOUN[op.kind] || op.kind} is not confirmed: ${failReason(op.error, conv)}`;
const clip = (s, n = 80) => (s.length > n ? `${s.slice(0, n)}…` : s);

const act = 'rounded px-1.5 py-0.5 text-xs text-slate-500 hover:bg-slate-200 hover:text-slate-800 focus-visible:outline-2 focus-visible:outline-indigo-500';

// Message text with the mentions highlighted (the user's own more strongly).
function MessageText({ m, me, names }) {
    // as the server counted them (mentionTest): highlight, badge and notification agree
    return mentionSpans(m.data, mentionTest(m, names)).map((p, i) =>
        p.mention ? (
            <mark
                key={i}
                data-testid="mention"
                data-me={p.mention === me ? 'true' : undefined}
                className={`rounded px-0.5 font-semibold ${p.mention === me ? 'bg-amber-200 text-amber-950' : 'bg-indigo-100 text-indigo-900'}`}
            >
                {p.text}
            </mark>
        ) : (
            <span key={i}>{p.text}</span>
        ),
    );
}

// A message's actions: React, Reply, Edit (own), Delete (rights). Beside
// the bubble, on hover or keyboard focus (icons; it covers no other
// message), or under it when the message is selected (a tap: phones have
// no hover) with their names.
function Actions({ m, conv, me, acts, picker, setPicker, setConfirm, pickerButton, selected }) {
    const own = m.from === me;
    const label = (icon, word) => (selected ? word : <span aria-hidden="true">{icon}</span>);
    const cls = selected ? `${act} px-2.5 py-1 text-sm` : act;
    return (
        <div
            className={
                selected
                    ? 'mt-1 flex gap-1 rounded-md border border-slate-200 bg-white p-0.5 shadow-sm'
                    : `pointer-events-none absolute top-0 z-10 flex gap-0.5 rounded-md border border-slate-200 bg-white p-0.5 whitespace-nowrap opacity-0 shadow-sm transition-opacity group-focus-within:pointer-events-auto group-focus-within:opacity-100 group-hover:pointer-events-auto group-hover:opacity-100 ${own ? 'right-full mr-1' : 'left-full ml-1'}`
            }
            role="toolbar"
            aria-label="Message actions"
            data-testid="msg-actions"
            data-selected={selected ? 'true' : undefined}
        >
            <button
                type="button"
                ref={pickerButton}
                className={cls}
                data-testid="react-button"
                aria-label="React"
                title="React"
                aria-expanded={picker}
                onClick={() => setPicker(!picker)}
            >
                {label('🙂', 'React')}
            </button>
            <button type="button" className={cls} data-testid="reply-button" aria-label="Reply" title="Reply" onClick={() => acts.onReply(m.id)}>
                {label('↩', 'Reply')}
            </button>
            {own && (
                <button type="button" className={cls} data-testid="edit-button" aria-label="Edit" title="Edit" onClick={() => acts.onEdit(m.id)}>
                    {label('✎', 'Edit')}
                </button>
            )}
            {canDelete(conv, m, me) && (
                <button
                    type="button"
                    className={`${cls} text-red-600`}
                    data-testid="delete-button"
                    aria-label="Delete"
                    title="Delete"
                    onClick={() => setConfirm(true)}
                >
                    {label('🗑', 'Delete')}
                </button>
            )}
        </div>
    );
}

function Bubble({ m, conv, me, conn, dispatch, names, editing, selected, flash, acts }) {
    const own = m.from === me;
    const [picker, setPicker] = useState(false);
    const [confirm, setConfirm] = useState(false);
    const pickerBox = useRef(null);
    const pickerButton = useRef(null);
    let status = null;
    if (own) {
        if (m.pending) status = m.status === 'failed' ? 'failed' : 'sending';
        else status = receiptOf(conv, m);
    }
    const actionable = !m.pending && !m.deleted && acts.canAct;
    const quote = m.reply_to ? replyPreview(conv, m.reply_to) : null;
    const op = m.pendingOp;
    const react = (emoji) => {
        const on = !((m.reactions && m.reactions[emoji]) || []).includes(me);
        acts.op({ kind: 'react', id: m.id, emoji, on });
        setPicker(false);
    };
    // the picker closes on Escape and on a click or tap outside it
    useEffect(() => {
        if (!picker) return;
        const onKey = (e) => e.key === 'Escape' && setPicker(false);
        const onDown = (e) => {
            const t = e.target;
            if (!(t instanceof Node)) return;
            if ((pickerBox.current && pickerBox.current.contains(t)) || (pickerButton.current && pickerButton.current.contains(t))) return;
            setPicker(false);
        };
        document.addEventListener('keydown', onKey);
        document.addEventListener('pointerdown', onDown);
        return () => {
            document.removeEventListener('keydown', onKey);
            document.removeEventListener('pointerdown', onDown);
        };
    }, [picker]);
    // a tap or click on the message (not on one of its controls) selects it
    const onTap = (e) => {
        if (m.pending || editing || !(actionable || m.reactions)) return;
        if (e.target instanceof Element && e.target.closest('button, a, textarea, input, form, [role=toolbar], [role=group]')) return;
        if (typeof window !== 'undefined' && window.getSelection && String(window.getSelection()).length) return; // selecting text to copy
        acts.onSelect(selected ? null : m.id);
    };
    const tone = own ? (status === 'failed' ? 'bg-red-600 text-white' : 'bg-indigo-600 text-white') : 'bg-white text-slate-900';
    const who = (list) => list.map((u) => (u === me ? 'you' : u)).join(', ');
    return (
        <div
            className={`group mb-1.5 flex flex-col ${own ? 'items-end' : 'items-start'}`}
            data-testid="msg"
            data-id={m.pending ? undefined : m.id}
            data-cid={m.cid}
            data-from={m.from}
            data-status={status || undefined}
            data-edited={m.edited ? 'true' : undefined}
            data-deleted={m.deleted ? 'true' : undefined}
            data-highlight={flash ? 'true' : undefined}
            data-selected={selected ? 'true' : undefined}
            onClick={onTap}
        >
            <div
                className={`relative max-w-[80%] rounded-2xl px-3 py-1.5 shadow-sm transition-shadow sm:max-w-[70%] ${own ? 'rounded-br-sm' : 'rounded-bl-sm'} ${tone} ${flash ? 'ring-4 ring-amber-400' : ''} ${selected ? 'ring-2 ring-indigo-300' : ''}`}
            >
                {actionable && !editing && !selected && <Actions {...{ m, conv, me, acts, picker, setPicker, setConfirm, pickerButton, selected: false }} />}
                {conv.group && !own && (
                    <p className="text-xs font-semibold" style={{ color: 'hsl(230 50% 45%)' }}>
                        {m.from}
                    </p>
                )}
                {quote && (
                    <button
                        type="button"
                        data-testid="reply-quote"
                        onClick={() => acts.onJump(m.reply_to)}
                        className={`mb-1 block w-full rounded-md border-l-4 px-2 py-1 text-left text-xs ${own ? 'border-indigo-200 bg-indigo-500/60 text-indigo-50' : 'border-indigo-400 bg-slate-100 text-slate-600'} focus-visible:outline-2 focus-visible:outline-indigo-300`}
                        aria-label={
                            quote.missing && !quote.from
                                ? 'Replying to an earlier message: show it'
                                : `Replying to ${quote.from === me ? 'you' : quote.from}: show the message`
                        }
                    >
                        {quote.missing ? (
                            quote.from ? (
                                <span>
                                    <span className="font-semibold">↩ {quote.from === me ? 'You' : quote.from}</span> <em>an earlier message</em>
                                </span>
                            ) : (
                                <span>↩ an earlier message</span>
                            )
                        ) : (
                            <>
                                <span className="font-semibold">↩ {quote.from === me ? 'You' : quote.from}</span>{' '}
                                {quote.deleted ? <em>message deleted</em> : clip(quote.data)}
                            </>
                        )}
                    </button>
                )}
                {editing ? (
                    <EditBox
                        m={m}
                        onSave={(data) => (data !== m.data && acts.op({ kind: 'edit', id: m.id, data }), acts.onEdit(null))}
                        onCancel={() => acts.onEdit(null)}
                    />
                ) : m.deleted ? (
                    <p className={`italic ${own ? 'text-indigo-100' : 'text-slate-400'}`} data-testid="msg-text">
                        message deleted
                    </p>
                ) : (
                    <p className="break-words whitespace-pre-wrap" data-testid="msg-text">
                        <MessageText m={m} me={me} names={names} />
                    </p>
                )}
                <p className={`mt-0.5 flex items-center justify-end gap-1 text-[11px] ${own ? 'text-indigo-100' : 'text-slate-400'}`}>
                    {!!m.edited && !m.deleted && <span data-testid="edited-mark">edited ·</span>}
                    <time dateTime={new Date(m.sent).toISOString()}>{formatTime(m.sent)}</time>
                    {status === 'sending' && <span aria-label="sending">· Sending…</span>}
                    {status === 'sent' && (
                        <span aria-label="sent" title="Sent">
                            · ✓ Sent
                        </span>
                    )}
                    {status === 'read' && (
                        <span aria-label="read" title="Read">
                            · ✓✓ Read
                        </span>
                    )}
                    {status === 'failed' && <span data-testid="fail-reason">· Not sent: {failReason(m.error, conv)}</span>}
                    {op && op.status === 'sending' && <span data-testid="op-status">· {OP_PENDING[op.kind]}</span>}
                </p>
                {status === 'failed' && (
                    <p className="mt-1 flex justify-end gap-2">
                        <button
                            className="rounded bg-white px-2 py-0.5 text-xs font-medium text-red-700 focus-visible:outline-2 focus-visible:outline-white"
                            onClick={() => conn && conn.retry(m.cid)}
                        >
                            Retry
                        </button>
                        <button
                            className="rounded px-2 py-0.5 text-xs text-red-100 underline focus-visible:outline-2 focus-visible:outline-white"
                            onClick={() => dispatch({ type: 'discard', cid: m.cid })}
                        >
                            Discard
                        </button>
                    </p>
                )}
            </div>
            {op && op.status === 'failed' && (
                <p className="mt-0.5 flex items-center gap-2 text-xs text-red-700" data-testid="op-failed">
                    {opFailText(op, conv)}:
                    <button className="rounded px-1 font-medium underline" onClick={() => conn && conn.retry(op.cid)}>
                        Retry
                    </button>
                    <button
                        className="rounded px-1 underline"
                        title="Show the message as the server has it"
                        onClick={() => (conn ? conn.discard(op.cid) : dispatch({ type: 'discard', cid: op.cid }))}
                    >
                        Discard
                    </button>
                </p>
            )}
            {m.reactions && !m.deleted && (
                <div className="mt-0.5 flex flex-wrap gap-1" data-testid="reactions">
                    {Object.entries(m.reactions).map(([emoji, users]) => {
                        const mine = users.includes(me);
                        const label = `${emoji} by ${who(users)}`;
                        return (
                            <button
                                key={emoji}
                                type="button"
                                data-testid="reaction"
                                data-emoji={emoji}
                                data-users={users.join(',')}
                                aria-pressed={mine}
                                aria-label={label}
                                title={label}
                                disabled={!actionable}
                                onClick={() => react(emoji)}
                                className={`rounded-full border px-1.5 text-xs leading-5 ${mine ? 'border-indigo-400 bg-indigo-50 text-indigo-900' : 'border-slate-200 bg-white text-slate-700'} focus-visible:outline-2 focus-visible:outline-indigo-500`}
                            >
                                {emoji} <span data-testid="reaction-count">{users.length}</span>
                            </button>
                        );
                    })}
                </div>
            )}
            {selected && m.reactions && !m.deleted && (
                <ul className="mt-0.5 text-xs text-slate-600" aria-label="Who reacted" data-testid="reaction-who">
                    {Object.entries(m.reactions).map(([emoji, users]) => (
                        <li key={emoji}>
                            {emoji} {who(users)}
                        </li>
                    ))}
                </ul>
            )}
            {actionable && !editing && selected && <Actions {...{ m, conv, me, acts, picker, setPicker, setConfirm, pickerButton, selected: true }} />}
            {actionable && picker && (
                <div
                    ref={pickerBox}
                    className="mt-1 flex gap-1 rounded-full border border-slate-200 bg-white px-2 py-1 shadow"
                    role="group"
                    aria-label="Pick a reaction"
                    data-testid="react-picker"
                >
                    {EMOJI.map((e) => (
                        <button
                            key={e}
                            type="button"
                            data-testid="react-option"
                            aria-label={`React with ${e}`}
                            onClick={() => react(e)}
                            className="rounded-full px-1 text-lg hover:bg-slate-100 focus-visible:outline-2 focus-visible:outline-indigo-500"
                        >
                            {e}
                        </button>
                    ))}
                </div>
            )}
            {actionable && confirm && (
                <div className="mt-1 flex items-center gap-2 text-xs text-slate-700" role="group" aria-label="Delete this message" data-testid="delete-confirm">
                    Delete this message{own ? '' : ` by ${m.from}`} for everyone?
                    <button
                        type="button"
                        className="rounded bg-red-600 px-2 py-0.5 font-medium text-white"
                        onClick={() => {
                            acts.op({ kind: 'delete', id: m.id });
                            setConfirm(false);
                        }}
                    >
                        Delete
                    </button>
                    <button type="button" className="rounded px-2 py-0.5 underline" onClick={() => setConfirm(false)}>
                        Cancel
                    </button>
                </div>
            )}
        </div>
    );
}

// Inline edit of an own message: Enter saves, Shift+Enter is a new line,
// Escape cancels. An emptied text is not saved (Delete removes a message).
function EditBox({ m, onSave, onCancel }) {
    const [text, setText] = useState(m.data);
    const ref = useRef(null);
    useEffect(() => {
        const el = ref.current;
        if (!el) return;
        el.focus();
        el.setSelectionRange(el.value.length, el.value.length);
    }, []);
    const save = () => {
        const data = text.trim();
        if (data) onSave(data);
    };
    return (
        <form
            className="flex flex-col gap-1"
            onSubmit={(e) => {
                e.preventDefault();
                save();
            }}
        >
            <label className="sr-only" htmlFor={`edit-${m.id}`}>
                Edit message
            </label>
            <textarea
                id={`edit-${m.id}`}
                ref={ref}
                data-testid="edit-box"
                rows={Math.min(6, text.split('\n').length)}
                className="min-w-48 resize-none rounded-md border border-slate-300 bg-white px-2 py-1 text-slate-900 focus:ring-2 focus:ring-indigo-300 focus:outline-none"
                value={text}
                onChange={(e) => setText(e.target.value)}
                onKeyDown={(e) => {
                    if (e.key === 'Escape') {
                        e.preventDefault();
                        onCancel();
                    } else if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
                        e.preventDefault();
                        save();
                    }
                }}
            />
            <span className="flex justify-end gap-2 text-xs">
                <span className="mr-auto opacity-80">Esc to cancel · Enter to save</span>
                <button type="button" className="underline" onClick={onCancel}>
                    Cancel
                </button>
                <button type="submit" disabled={!text.trim()} className="rounded bg-white px-2 py-0.5 font-medium text-indigo-700 disabled:opacity-50">
                    Save
                </button>
            </span>
        </form>
    );
}

// The composer: Enter sends, Shift+Enter is a new line; `@` offers the
// conversation's members (ArrowUp/ArrowDown, Enter or Tab picks, Escape
// closes); ArrowUp in an empty composer edits the last own message; a reply
// shows its quoted original above, Escape cancels it.
function Composer({ conv, conn, me, replyTo, onCancelReply, onEditLast }) {
    const [text, setText] = useState('');
    const [caret, setCaret] = useState(0);
    const [pick, setPick] = useState(0);
    const [closed, setClosed] = useState(null); // the @ position whose list was closed with Escape
    const ref = useRef(null);
    const wantCaret = useRef(null);
    useEffect(() => {
        if (window.matchMedia && window.matchMedia('(min-width: 768px)').matches) ref.current && ref.current.focus();
    }, [conv.key]);
    useEffect(() => {
        if (replyTo && ref.current) ref.current.focus();
    }, [replyTo]);
    useLayoutEffect(() => {
        if (wantCaret.current !== null && ref.current) {
            ref.current.setSelectionRange(wantCaret.current, wantCaret.current);
            wantCaret.current = null;
        }
    });
    const query = mentionQuery(text, caret);
    // the list, unless closed with Escape or the name is typed in full (Enter then sends)
    const found = query && closed !== query.start ? completions(query.prefix, mentionCandidates(conv, me)) : [];
    const options = query && found.includes(query.prefix) ? [] : found;
    const choice = Math.min(pick, Math.max(0, options.length - 1));
    const quote = replyTo ? replyPreview(conv, replyTo) : null;

    const send = () => {
        const data = text.trim();
        if (!data || !conn) return;
        conn.sendText(conv.key, data, replyTo || undefined);
        conn.stoppedTyping(conv.key);
        setText('');
        setCaret(0);
        if (replyTo) onCancelReply();
    };
    const complete = (name) => {
        const r = completeMention(text, caret, name);
        setText(r.text);
        setCaret(r.caret);
        setPick(0);
        wantCaret.current = r.caret;
        ref.current && ref.current.focus();
    };
    const track = (e) => setCaret(e.target.selectionStart ?? e.target.value.length);
    return (
        <div className="border-t border-slate-200">
            {quote && (
                <div className="flex items-center gap-2 bg-slate-50 px-4 py-1.5 text-sm" data-testid="reply-bar">
                    <span className="min-w-0 flex-1 truncate border-l-4 border-indigo-400 pl-2 text-slate-600">
                        Replying to{' '}
                        {quote.missing ? (
                            'a message'
                        ) : (
                            <>
                                <b>{quote.from === me ? 'yourself' : quote.from}</b>: {quote.deleted ? <em>message deleted</em> : clip(quote.data)}
                            </>
                        )}
                    </span>
                    <button type="button" className={`${btn} text-slate-500 hover:bg-slate-200`} aria-label="Cancel reply" onClick={onCancelReply}>
                        ✕
                    </button>
                </div>
            )}
            {options.length > 0 && (
                <ul
                    id="mention-list"
                    role="listbox"
                    aria-label="Mention someone"
                    className="mx-3 mt-2 max-h-48 overflow-y-auto rounded-md border border-slate-200 bg-white shadow sm:mx-4"
                >
                    {options.map((n, i) => (
                        <li
                            key={n}
                            id={`mention-${n}`}
                            role="option"
                            aria-selected={i === choice}
                            data-testid="mention-option"
                            className={`cursor-pointer px-3 py-1.5 text-sm ${i === choice ? 'bg-indigo-50 text-indigo-900' : 'text-slate-700'}`}
                            onMouseDown={(e) => {
                                e.preventDefault(); // keep the focus in the composer
                                complete(n);
                            }}
                        >
                            @{n}
                        </li>
                    ))}
                </ul>
            )}
            <form
                className="flex items-end gap-2 px-3 py-2.5 sm:px-4"
                onSubmit={(e) => {
                    e.preventDefault();
                    send();
                }}
            >
                <label htmlFor="composer" className="sr-only">
                    Message to {conv.key}
                </label>
                <textarea
                    id="composer"
                    ref={ref}
                    rows={1}
                    maxLength={16000}
                    placeholder={`Message ${conv.key}`}
                    role="combobox"
                    aria-expanded={options.length > 0}
                    aria-controls="mention-list"
                    aria-autocomplete="list"
                    aria-activedescendant={options.length ? `mention-${options[choice]}` : undefined}
                    className="max-h-40 min-h-10 flex-1 resize-none rounded-xl border border-slate-300 px-3 py-2 text-slate-900 focus:border-indigo-500 focus:ring-2 focus:ring-indigo-500 focus:outline-none"
                    value={text}
                    onChange={(e) => {
                        setText(e.target.value);
                        track(e);
                        setPick(0);
                        if (e.target.value && conn) conn.typing(conv.key);
                    }}
                    onSelect={track}
                    onKeyDown={(e) => {
                        if (e.nativeEvent.isComposing) return;
                        if (options.length) {
                            if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                                e.preventDefault();
                                setPick((choice + (e.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length);
                                return;
                            }
                            if (e.key === 'Enter' || e.key === 'Tab') {
                                e.preventDefault();
                                complete(options[choice]);
                                return;
                            }
                            if (e.key === 'Escape') {
                                e.preventDefault();
                                setClosed(query.start);
                                return;
                            }
                        }
                        if (e.key === 'Escape' && replyTo) {
                            e.preventDefault();
                            onCancelReply();
                        } else if (e.key === 'ArrowUp' && !text) {
                            e.preventDefault();
                            onEditLast();
                        } else if (e.key === 'Enter' && !e.shiftKey) {
                            e.preventDefault();
                            send();
                        }
                    }}
                />
                <button
                    type="submit"
                    aria-label="Send"
                    disabled={!text.trim()}
                    className="flex h-10 w-10 shrink-0 items-center justify-center rounded-full bg-indigo-600 text-white hover:bg-indigo-700 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-700 disabled:opacity-50"
                >
                    <svg viewBox="0 0 24 24" className="h-5 w-5" fill="currentColor" aria-hidden="true">
                        <path d="M3.4 20.4 21 12 3.4 3.6 3.4 10.2 15 12 3.4 13.8z" />
                    </svg>
                </button>
            </form>
        </div>
    );
}

function AddMembers({ conv, conn, onDone }) {
    const [names, setNames] = useState('');
    const [err, setErr] = useState('');
    return (
        <form
            className="flex flex-wrap items-center gap-2 border-b border-slate-200 bg-slate-50 px-4 py-2"
            aria-label="Add members"
            onSubmit={(e) => {
                e.preventDefault();
                const list = names
                    .split(/[\s,]+/)
                    .map((x) => x.trim().toLowerCase())
                    .filter(Boolean);
                const bad = list.find((x) => !isUserName(x));
                if (!list.length || bad) return setErr(bad ? `"${bad}" is not a user name.` : 'Enter at least one name.');
                if (!conn || !conn.group('add', conv.key, { members: list })) return setErr('Not connected: try again in a moment.');
                setNames('');
                onDone();
            }}
        >
            <label className="text-sm text-slate-600" htmlFor="add-members">
                Add to {conv.key}:
            </label>
            <input
                id="add-members"
                autoFocus
                className="min-w-0 flex-1 rounded-md border border-slate-300 px-2 py-1 text-sm focus:ring-2 focus:ring-indigo-500 focus:outline-none"
                value={names}
                onChange={(e) => setNames(e.target.value)}
                placeholder="carol, dave"
            />
            <button type="submit" className={`${btn} bg-indigo-600 text-white`}>
                Add
            </button>
            {err && (
                <p role="alert" className="w-full text-xs text-red-600">
                    {err}
                </p>
            )}
        </form>
    );
}
