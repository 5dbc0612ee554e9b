// Sidebar: who I am, the notifications switch (asks the browser's permission
// on a click, never by itself), find people, new/join group, and the
// conversation list (presence dot, unread badge (grey when muted), mention
// badge, last-message preview, most recent first).
import { useEffect, useEffectEvent, useRef, useState } from 'react';
import { isUserName, normalizeGroupName } from '../lib/names.js';
import { conversationList } from '../lib/store.js';
import { shortStamp } from '../lib/time.js';
import Avatar from './Avatar.jsx';

const btn = 'rounded-md px-2.5 py-1.5 text-sm font-medium focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600';
const input =
    'w-full rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500';

export default function Sidebar({ className, state, api, conn, onOpen, onLogout, onAccount, dispatch }) {
    const [panel, setPanel] = useState(null); // null | 'group' | 'join'
    const list = conversationList(state);
    return (
        <aside className={`${className} w-full min-w-0 flex-col border-slate-200 md:w-80 md:border-r`} aria-label="Conversations">
            <header className="flex items-center gap-3 border-b border-slate-200 px-4 py-3">
                {state.me && <Avatar name={state.me} online={state.conn.status === 'online'} />}
                <div className="min-w-0 flex-1">
                    <p className="truncate font-semibold text-slate-900" data-testid="me">
                        {state.me || '…'}
                    </p>
                    <p className="text-xs text-slate-500">{state.conn.status === 'online' ? 'Online' : 'Not connected'}</p>
                </div>
                <button className={`${btn} text-slate-600 hover:bg-slate-100`} onClick={onAccount}>
                    Account
                </button>
                <button className={`${btn} text-slate-600 hover:bg-slate-100`} onClick={onLogout}>
                    Log out
                </button>
            </header>
            <div className="space-y-2 border-b border-slate-200 px-4 py-3">
                <UserSearch
                    api={api}
                    onPick={(u) => {
                        if (!u.username.startsWith('#')) {
                            dispatch({ type: 'addContact', key: u.username, online: u.online });
                            onOpen(u.username);
                        } else if (state.convs[u.username]) {
                            onOpen(u.username);
                        } else if (conn && conn.group('join', u.username)) {
                            dispatch({ type: 'wantOpen', key: u.username }); // opens when the group frame comes
                        }
                    }}
                    me={state.me}
                />
                <div className="flex gap-2">
                    <button
                        className={`${btn} flex-1 bg-slate-100 text-slate-700 hover:bg-slate-200`}
                        aria-expanded={panel === 'group'}
                        onClick={() => setPanel(panel === 'group' ? null : 'group')}
                    >
                        New group
                    </button>
                    <button
                        className={`${btn} flex-1 bg-slate-100 text-slate-700 hover:bg-slate-200`}
                        aria-expanded={panel === 'join'}
                        onClick={() => setPanel(panel === 'join' ? null : 'join')}
                    >
                        Join group
                    </button>
                </div>
                <NotifyButton />
                {panel === 'group' && (
                    <NewGroup
                        conn={conn}
                        me={state.me}
                        onDone={(name) => {
                            setPanel(null);
                            if (name) dispatch({ type: 'wantOpen', key: name });
                        }}
                    />
                )}
                {panel === 'join' && (
                    <JoinGroup
                        conn={conn}
                        onDone={(name) => {
                            setPanel(null);
                            if (name) dispatch({ type: 'wantOpen', key: name });
                        }}
                    />
                )}
            </div>
            <nav className="min-h-0 flex-1 overflow-y-auto" aria-label="Conversation list">
                {list.length === 0 && <p className="px-4 py-6 text-sm text-slate-500">No conversations yet. Find someone above to start one.</p>}
                <ul>
                    {list.map((c) => (
                        <li key={c.key}>
                            <ConvItem
                                conv={c}
                                me={state.me}
                                blocked={!!state.blocked[c.key]}
                                muted={!!state.muted[c.key]}
                                active={state.active === c.key}
                                onOpen={onOpen}
                            />
                        </li>
                    ))}
                </ul>
            </nav>
        </aside>
    );
}

// The browser's notification permission, asked for only on this button's
// click (a page may not ask on load); shown while the browser has not been
// asked yet (nothing where it has no notifications, or once answered).
function NotifyButton() {
    const N = globalThis.Notification;
    const [perm, setPerm] = useState(() => (N ? N.permission : 'unsupported'));
    if (!N || perm !== 'default') return null;
    return (
        <button
            className={`${btn} flex w-full items-center justify-center gap-2 bg-amber-50 text-amber-900 hover:bg-amber-100`}
            data-testid="notify-button"
            title="Be notified of mentions and direct messages while Parley is in the background"
            onClick={async () => {
                try {
                    setPerm(await N.requestPermission());
                } catch {
                    setPerm(N.permission);
                }
            }}
        >
            <svg viewBox="0 0 24 24" className="h-4 w-4" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
                <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a1.94 1.94 0 0 0 3.4 0" />
            </svg>
            Turn on notifications
        </button>
    );
}

function ConvItem({ conv, me, blocked, muted, active, onOpen }) {
    const shown = conv.preview && conv.preview.deleted ? 'message deleted' : conv.preview ? conv.preview.data : '';
    const preview = conv.preview
        ? `${conv.preview.event ? `${conv.preview.from === me ? 'You' : conv.preview.from} ` : conv.preview.from === me ? 'You: ' : conv.group ? `${conv.preview.from}: ` : ''}${shown}`
        : conv.group
          ? 'Group'
          : conv.online
            ? 'Online'
            : 'Offline';
    const label = `${conv.key}${conv.group ? (conv.removed ? ', removed' : '') : blocked ? ', blocked' : conv.online ? ', online' : ', offline'}${muted ? ', muted' : ''}${conv.unread ? `, ${conv.unread} unread` : ''}${conv.mentions ? `, ${conv.mentions} mentioning you` : ''}`;
    return (
        <button
            data-testid="conv"
            data-key={conv.key}
            data-online={conv.group ? undefined : String(conv.online)}
            data-blocked={blocked ? 'true' : undefined}
            data-removed={conv.removed ? 'true' : undefined}
            data-muted={muted ? 'true' : undefined}
            aria-label={label}
            aria-current={active ? 'true' : undefined}
            onClick={() => onOpen(conv.key)}
            className={`flex w-full items-center gap-3 px-4 py-3 text-left hover:bg-slate-50 focus-visible:bg-indigo-50 focus-visible:outline-none ${active ? 'bg-indigo-50' : ''}`}
        >
            <Avatar name={conv.key} online={conv.online} />
            <span className="min-w-0 flex-1">
                <span className="flex items-baseline justify-between gap-2">
                    <span className={`truncate ${conv.unread ? 'font-semibold text-slate-900' : 'font-medium text-slate-800'}`}>
                        {conv.key}
                        {blocked && (
                            <span className="ml-2 rounded bg-slate-200 px-1.5 py-0.5 text-xs font-medium text-slate-700" data-testid="blocked-mark">
                                Blocked
                            </span>
                        )}
                        {muted && (
                            <span className="ml-1.5 text-xs" data-testid="muted-mark" title="Muted" aria-hidden="true">
                                🔕
                            </span>
                        )}
                    </span>
                    <span className="shrink-0 text-xs text-slate-400">{shortStamp(conv.lastActivity)}</span>
                </span>
                <span className="flex items-center gap-2">
                    <span className="min-w-0 flex-1 truncate text-sm text-slate-500" data-testid="preview">
                        {Object.keys(conv.typing).length ? <em className="text-indigo-600">typing…</em> : preview}
                    </span>
                    {conv.mentions > 0 && (
                        <span
                            data-testid="mention-badge"
                            title={`${conv.mentions} unread message${conv.mentions === 1 ? '' : 's'} mentioning you`}
                            className={`shrink-0 rounded-full px-1.5 text-center text-xs leading-5 font-semibold ${muted ? 'bg-slate-300 text-slate-700' : 'bg-amber-500 text-white'}`}
                        >
                            @{conv.mentions > 99 ? '99+' : conv.mentions}
                        </span>
                    )}
                    {conv.unread > 0 && (
                        <span
                            data-testid="unread-badge"
                            data-muted={muted ? 'true' : undefined}
                            className={`min-w-5 shrink-0 rounded-full px-1.5 text-center text-xs leading-5 font-semibold ${muted ? 'bg-slate-300 text-slate-700' : 'bg-indigo-600 text-white'}`}
                        >
                            {conv.unread > 99 ? '99+' : conv.unread}
                        </span>
                    )}
                </span>
            </span>
        </button>
    );
}

function UserSearch({ api, onPick, me }) {
    const [q, setQ] = useState('');
    const [res, setRes] = useState(null);
    const [err, setErr] = useState('');
    const seq = useRef(0);
    // every change of the box goes through here: emptying it drops the
    // results (and any error) at once
    const edit = (text) => {
        setQ(text);
        if (!text.trim()) {
            setRes(null);
            setErr('');
        }
    };
    const show = useEffectEvent((r) => {
        if (r.ok) {
            setRes((r.data || []).filter((u) => u.username !== me));
            setErr('');
        } else setErr(r.error);
    });
    // a search 200 ms after the last keystroke; only the newest answer shows
    useEffect(() => {
        const term = q.trim().toLowerCase();
        if (!term) return;
        const n = ++seq.current;
        const t = setTimeout(async () => {
            const r = await api.users(term);
            if (n === seq.current) show(r);
        }, 200);
        return () => clearTimeout(t);
    }, [q, api]);
    const pick = (u) => {
        onPick(u);
        edit('');
    };
    return (
        <div>
            <label className="sr-only" htmlFor="user-search">
                Find people or open groups
            </label>
            <input
                id="user-search"
                type="search"
                placeholder="Find people or #open-groups…"
                autoComplete="off"
                className={input}
                value={q}
                onChange={(e) => edit(e.target.value)}
                onKeyDown={(e) => {
                    if (e.key === 'Enter' && res && res.length) pick(res[0]);
                    if (e.key === 'Escape') edit('');
                }}
            />
            {err && (
                <p role="alert" className="mt-1 text-xs text-red-600">
                    {err}
                </p>
            )}
            {res && (
                <ul className="mt-1 max-h-56 overflow-y-auto rounded-md border border-slate-200" aria-label="Search results">
                    {res.length === 0 && <li className="px-3 py-2 text-sm text-slate-500">Nobody by that name.</li>}
                    {res.map((u) => (
                        <li key={u.username}>
                            <button
                                data-testid="search-result"
                                className="flex w-full items-center gap-2 px-3 py-2 text-left text-sm hover:bg-slate-50 focus-visible:bg-indigo-50 focus-visible:outline-none"
                                onClick={() => pick(u)}
                            >
                                <Avatar name={u.username} online={u.online} size="h-6 w-6" />
                                <span className="flex-1">{u.username}</span>
                                <span className="text-xs text-slate-400">{u.username.startsWith('#') ? 'join' : u.online ? 'online' : 'offline'}</span>
                            </button>
                        </li>
                    ))}
                </ul>
            )}
        </div>
    );
}

function NewGroup({ conn, me, onDone }) {
    const [name, setName] = useState('');
    const [members, setMembers] = useState('');
    const [open, setOpen] = useState(false);
    const [err, setErr] = useState('');
    const submit = (e) => {
        e.preventDefault();
        const g = normalizeGroupName(name);
        if (!g) return setErr('A group name is 1 to 32 of a-z, 0-9, "_", "." and "-".');
        const list = members
            .split(/[\s,]+/)
            .map((m) => m.trim().toLowerCase())
            .filter((m) => m && m !== me);
        const bad = list.find((m) => !isUserName(m));
        if (bad) return setErr(`"${bad}" is not a user name.`);
        const extra = { members: [...new Set(list)] };
        if (open) extra.open = true;
        if (!conn || !conn.group('create', g, extra)) return setErr('Not connected: try again in a moment.');
        onDone(g);
    };
    return (
        <form onSubmit={submit} className="space-y-2 rounded-md bg-slate-50 p-3" aria-label="New group">
            <label className="block text-xs font-medium text-slate-600">
                Group name
                <input className={input} value={name} onChange={(e) => setName(e.target.value)} placeholder="#team" autoFocus />
            </label>
            <label className="block text-xs font-medium text-slate-600">
                Members (names, comma separated)
                <input className={input} value={members} onChange={(e) => setMembers(e.target.value)} placeholder="alice, bob" />
            </label>
            <label className="flex items-center gap-2 text-sm text-slate-700">
                <input type="checkbox" checked={open} onChange={(e) => setOpen(e.target.checked)} className="h-4 w-4" />
                Open: anyone may join
            </label>
            {err && (
                <p role="alert" className="text-xs text-red-600">
                    {err}
                </p>
            )}
            <div className="flex gap-2">
                <button type="submit" className={`${btn} bg-indigo-600 text-white hover:bg-indigo-700`}>
                    Create
                </button>
                <button type="button" className={`${btn} text-slate-600 hover:bg-slate-200`} onClick={() => onDone(null)}>
                    Cancel
                </button>
            </div>
        </form>
    );
}

function JoinGroup({ conn, onDone }) {
    const [name, setName] = useState('');
    const [err, setErr] = useState('');
    const submit = (e) => {
        e.preventDefault();
        const g = normalizeGroupName(name);
        if (!g) return setErr('A group name is 1 to 32 of a-z, 0-9, "_", "." and "-".');
        if (!conn || !conn.group('join', g)) return setErr('Not connected: try again in a moment.');
        onDone(g);
    };
    return (
        <form onSubmit={submit} className="space-y-2 rounded-md bg-slate-50 p-3" aria-label="Join group">
            <label className="block text-xs font-medium text-slate-600">
                Open group to join
                <input className={input} value={name} onChange={(e) => setName(e.target.value)} placeholder="#lobby" autoFocus />
            </label>
            {err && (
                <p role="alert" className="text-xs text-red-600">
                    {err}
                </p>
            )}
            <div className="flex gap-2">
                <button type="submit" className={`${btn} bg-indigo-600 text-white hover:bg-indigo-700`}>
                    Join
                </button>
                <button type="button" className={`${btn} text-slate-600 hover:bg-slate-200`} onClick={() => onDone(null)}>
                    Cancel
                </button>
            </div>
        </form>
    );
}
