// Chat: the signed-in screen. Owns the store (store.js) and the connection
// (connection.js) for as long as the user stays signed in, and runs the few
// effects that tie them to the page: tab title, read receipts, history loads,
// typing expiry, reconnect on the browser's `online` event, browser
// notifications (a mention, or a 1:1 message, while the tab is hidden, the
// conversation not muted, and the permission granted: asked for only when
// the user clicks the sidebar's button), mutes kept in localStorage. The
// account dialog (sessions, password, blocked users) opens over it.
import { useCallback, useEffect, useEffectEvent, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { Connection, createStore, wsUrl } from '../lib/connection.js';
import { loadMuted, saveMuted } from '../lib/prefs.js';
import { conversationList, initialState, notificationFor, readFrame, reduce, titleFor } from '../lib/store.js';
import Account from './Account.jsx';
import Banner from './Banner.jsx';
import ChatPane from './ChatPane.jsx';
import Sidebar from './Sidebar.jsx';

function usePageVisible() {
    const [visible, setVisible] = useState(() => document.visibilityState !== 'hidden');
    useEffect(() => {
        const on = () => setVisible(document.visibilityState !== 'hidden');
        document.addEventListener('visibilitychange', on);
        return () => document.removeEventListener('visibilitychange', on);
    }, []);
    return visible;
}

// Why the page went back to the login screen, in words.
export const SIGNED_OUT = {
    expired: 'Your session has expired. Please log in again.',
    revoked: 'You have been logged out: this session was ended from another device (or the password was changed). Log in again.',
    everywhere: 'You have been logged out on every device.',
};

// Shows a browser notification for a live frame when the page is hidden;
// a click brings the page forward on that conversation.
function notify(f, before, open) {
    const N = globalThis.Notification;
    if (document.visibilityState !== 'hidden' || !N || N.permission !== 'granted') return;
    const n = notificationFor(before, f);
    if (!n) return;
    try {
        const note = new N(n.title, { body: n.body, tag: n.tag });
        note.onclick = () => {
            window.focus();
            open(n.key);
            note.close();
        };
    } catch {
        // a browser that only notifies from a service worker: nothing shown
    }
}

export default function Chat({ api, onSignedOut }) {
    const store = useMemo(() => createStore(reduce, initialState()), []);
    const state = useSyncExternalStore(store.subscribe, store.getState);
    // built once (the constructor only stores its options); the effect below
    // starts it and stops it when the user signs out
    const [conn] = useState(
        () =>
            new Connection({
                url: wsUrl(),
                dispatch: store.dispatch,
                getState: store.getState,
                onSignedOut: (reason) => onSignedOut(SIGNED_OUT[reason] || SIGNED_OUT.expired),
                onFrame: (f, before) => f.kind === 'text' && notify(f, before, (key) => store.dispatch({ type: 'open', key })),
            }),
    );
    const previewed = useRef(new Set());
    const looked = useRef(new Set());
    const [atBottom, setAtBottom] = useState(true);
    const [account, setAccount] = useState(false);
    const visible = usePageVisible();

    useEffect(() => {
        conn.start();
        const online = () => conn.retryNow();
        window.addEventListener('online', online);
        return () => {
            window.removeEventListener('online', online);
            conn.stop();
        };
    }, [conn]);

    // this user's muted conversations, once hello has named the user
    useEffect(() => {
        if (state.me) store.dispatch({ type: 'muted', keys: loadMuted(state.me) });
    }, [state.me, store]);
    const mute = useCallback(
        (key, on) => {
            const s = store.getState();
            const keys = Object.keys(s.muted).filter((k) => k !== key);
            if (on) keys.push(key);
            saveMuted(s.me, keys);
            store.dispatch({ type: 'mute', key, on });
        },
        [store],
    );

    const online = state.conn.status === 'online';
    const active = state.active ? state.convs[state.active] : null;
    const activeKey = active ? active.key : null;
    // a group this user was removed from is not asked about any more (the
    // server would refuse: not a member)
    const activeLoaded = active ? active.historyLoaded || !!active.removed : false;

    // unread total in the tab title
    useEffect(() => {
        document.title = titleFor(state);
    });

    // the open conversation: its newest page once per connection/epoch
    useEffect(() => {
        if (online && activeKey && !activeLoaded) conn.requestHistory(activeKey, 'initial');
    }, [online, activeKey, activeLoaded, conn]);

    // previews for the list (newest message of each conversation), paced;
    // looked at when the connection comes up and when the list grows or shrinks
    const requestPreviews = useEffectEvent(() => {
        const want = conversationList(state)
            .filter((c) => !c.preview && !c.previewKnown && !c.removed && !previewed.current.has(c.key))
            .sort((a, b) => b.unread - a.unread)
            .map((c) => c.key);
        for (const k of want) previewed.current.add(k);
        if (want.length) conn.requestPreviews(want);
    });
    const convCount = Object.keys(state.convs).length;
    useEffect(() => {
        if (online) requestPreviews();
    }, [online, convCount]);

    // a conversation that did not come with hello (a first message, a search
    // hit): its presence now, from the API; online/offline frames follow
    const unknown = Object.values(state.convs)
        .filter((c) => !c.group && !c.known)
        .map((c) => c.key)
        .join(' ');
    useEffect(() => {
        // a name known again (or never looked up) may be looked up again later, e.g. after an unblock
        for (const k of looked.current) if (!unknown.split(' ').includes(k)) looked.current.delete(k);
        if (!online || !unknown) return;
        for (const key of unknown.split(' ')) {
            if (looked.current.has(key)) continue;
            looked.current.add(key);
            api.users(key).then((r) => {
                const u = r.ok && Array.isArray(r.data) ? r.data.find((x) => x.username === key) : null;
                if (u) store.dispatch({ type: 'addContact', key, online: !!u.online });
            });
        }
    }, [online, unknown, api, store]);

    // read receipts: what is on screen, visible and scrolled to the end, is
    // read; looked at whenever the open conversation or one of those changes
    const markActiveRead = useEffectEvent(() => {
        const f = readFrame(state, active.key);
        // sent (or a server without `read`: the badge still clears here)
        if (f ? conn.markRead(f) || !conn.features.read : active.unread) store.dispatch({ type: 'markRead', key: active.key });
    });
    useEffect(() => {
        if (online && active && !active.removed && visible && atBottom) markActiveRead();
    }, [online, active, visible, atBottom]);

    // typing indicators fade out
    const anyTyping = Object.values(state.convs).some((c) => Object.keys(c.typing).length);
    useEffect(() => {
        if (!anyTyping) return;
        const t = setInterval(() => store.dispatch({ type: 'expireTyping', now: Date.now() }), 1000);
        return () => clearInterval(t);
    }, [anyTyping, store]);

    const logout = useCallback(async () => {
        conn.stop();
        await api.logout();
        onSignedOut('');
    }, [api, conn, onSignedOut]);

    // POST /api/logout-all: every session ends, this one too
    const logoutAll = useCallback(async () => {
        conn.stop();
        const r = await api.logoutAll();
        if (r.ok) onSignedOut(SIGNED_OUT.everywhere);
        else conn.start();
        return r;
    }, [api, conn, onSignedOut]);

    const open = useCallback(
        (key) => {
            store.dispatch({ type: 'open', key });
            setAtBottom(true);
        },
        [store],
    );

    return (
        <div className="flex h-full flex-col">
            <Banner conn={state.conn} syncing={state.syncing} onRetry={() => conn.retryNow()} />
            <div className="mx-auto flex min-h-0 w-full max-w-6xl flex-1 bg-white md:my-4 md:rounded-2xl md:shadow-lg">
                <Sidebar
                    className={state.active ? 'hidden md:flex' : 'flex'}
                    state={state}
                    api={api}
                    conn={conn}
                    onOpen={open}
                    onLogout={logout}
                    onAccount={() => setAccount(true)}
                    dispatch={store.dispatch}
                />
                <ChatPane
                    className={state.active ? 'flex' : 'hidden md:flex'}
                    state={state}
                    conv={active}
                    conn={conn}
                    dispatch={store.dispatch}
                    onBack={() => open(null)}
                    onBottom={setAtBottom}
                    onMute={mute}
                />
            </div>
            {account && <Account api={api} conn={conn} me={state.me} blocked={state.blocked} onClose={() => setAccount(false)} onLogoutAll={logoutAll} />}
            {state.notice && <Notice notice={state.notice} onClose={() => store.dispatch({ type: 'notice', text: '' })} />}
        </div>
    );
}

function Notice({ notice, onClose }) {
    // closes 6 s after each new notice (not after each render of the page)
    const close = useEffectEvent(() => onClose());
    useEffect(() => {
        const t = setTimeout(() => close(), 6000);
        return () => clearTimeout(t);
    }, [notice.at]);
    return (
        <div role="alert" className="fixed right-4 bottom-4 left-4 mx-auto max-w-md rounded-lg bg-slate-900 px-4 py-3 text-sm text-white shadow-lg">
            <div className="flex items-start gap-3">
                <p className="flex-1">{notice.text}</p>
                <button
                    onClick={onClose}
                    className="rounded px-1 text-slate-300 hover:text-white focus-visible:outline-2 focus-visible:outline-white"
                    aria-label="Dismiss"
                >
                    ✕
                </button>
            </div>
        </div>
    );
}
