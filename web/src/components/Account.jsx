// Account: the signed-in user's own settings, as a dialog over the chat:
// where they are logged in (GET /api/sessions: device, signed in, last
// active, "this device"; revoke one; log out everywhere), password change
// (POST /api/password: the other sessions end, this one goes on with the
// fresh cookie), and the users they block (unblock).
import { useEffect, useEffectEvent, useRef, useState } from 'react';
import { describeAgent } from '../lib/agent.js';
import { checkPassword } from '../lib/names.js';
import { ago, when } from '../lib/time.js';

const btn = 'rounded-md px-2.5 py-1.5 text-sm font-medium focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600';
const field =
    'mt-1 block w-full rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-900 focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500';

export default function Account({ api, conn, me, blocked, onClose, onLogoutAll }) {
    const box = useRef(null);
    const close = useEffectEvent(() => onClose());
    useEffect(() => {
        box.current && box.current.focus();
        const key = (e) => e.key === 'Escape' && close();
        window.addEventListener('keydown', key);
        return () => window.removeEventListener('keydown', key);
    }, []);
    const [version, setVersion] = useState(0); // bumped to reload the sessions
    return (
        <div className="fixed inset-0 z-20 flex items-stretch justify-center bg-slate-900/40 md:items-center md:p-6" onClick={onClose}>
            <div
                ref={box}
                tabIndex={-1}
                role="dialog"
                aria-modal="true"
                aria-labelledby="account-title"
                data-testid="account"
                className="flex max-h-full w-full flex-col bg-white focus:outline-none md:max-w-xl md:rounded-2xl md:shadow-xl"
                onClick={(e) => e.stopPropagation()}
            >
                <header className="flex items-center gap-3 border-b border-slate-200 px-5 py-3">
                    <h2 id="account-title" className="flex-1 text-lg font-semibold text-slate-900">
                        Account: {me}
                    </h2>
                    <button className={`${btn} text-slate-600 hover:bg-slate-100`} onClick={onClose} aria-label="Close account settings">
                        ✕
                    </button>
                </header>
                <div className="min-h-0 flex-1 space-y-6 overflow-y-auto px-5 py-4">
                    <Sessions api={api} version={version} onLogoutAll={onLogoutAll} />
                    <Password api={api} conn={conn} onChanged={() => setVersion((v) => v + 1)} />
                    <Blocked conn={conn} blocked={blocked} />
                </div>
            </div>
        </div>
    );
}

function Sessions({ api, version, onLogoutAll }) {
    const [list, setList] = useState(null);
    const [error, setError] = useState('');
    const [confirmAll, setConfirmAll] = useState(false);
    const [busy, setBusy] = useState(false);
    const [tick, setTick] = useState(0); // bumped to reload the list
    useEffect(() => {
        let live = true;
        api.sessions().then((r) => {
            if (!live) return;
            if (r.ok && Array.isArray(r.data)) {
                setList(r.data.filter((x) => x && x.id !== undefined).sort((a, b) => !!b.current - !!a.current || (b.last_seen || 0) - (a.last_seen || 0)));
                setError('');
            } else setError(r.error || 'Could not load your sessions.');
        });
        return () => {
            live = false;
        };
    }, [api, version, tick]);
    const load = () => setTick((t) => t + 1);

    const revoke = async (id) => {
        setBusy(true);
        const r = await api.revokeSession(id);
        setBusy(false);
        if (!r.ok && r.status !== 404) setError(r.error);
        else setError('');
        load();
    };
    const all = async () => {
        setBusy(true);
        const r = await onLogoutAll();
        setBusy(false);
        if (r && !r.ok) setError(r.error);
    };
    // eslint-disable-next-line react-hooks/purity -- "5 min ago" is as of this render, on purpose
    const now = Date.now();
    return (
        <section aria-labelledby="sessions-title">
            <h3 id="sessions-title" className="mb-2 font-semibold text-slate-800">
                Where you are logged in
            </h3>
            {error && (
                <p role="alert" className="mb-2 rounded-md bg-red-50 px-3 py-2 text-sm text-red-700">
                    {error}
                </p>
            )}
            {list === null && !error && <p className="text-sm text-slate-500">Loading…</p>}
            {list && (
                <ul className="divide-y divide-slate-100 rounded-md border border-slate-200" aria-label="Sessions">
                    {list.map((x) => (
                        <li key={x.id} className="flex items-center gap-3 px-3 py-2" data-testid="session" data-current={x.current ? 'true' : 'false'}>
                            <div className="min-w-0 flex-1">
                                <p className="truncate text-sm font-medium text-slate-900" title={x.agent || ''}>
                                    {describeAgent(x.agent)}
                                    {x.current && (
                                        <span
                                            className="ml-2 rounded bg-emerald-100 px-1.5 py-0.5 text-xs font-medium text-emerald-800"
                                            data-testid="this-device"
                                        >
                                            This device
                                        </span>
                                    )}
                                </p>
                                <p className="text-xs text-slate-500">
                                    Logged in {x.created ? when(x.created, now) : 'at an unknown time'} · active {x.current ? 'now' : ago(x.last_seen, now)}
                                </p>
                            </div>
                            {!x.current && (
                                <button
                                    className={`${btn} text-red-700 hover:bg-red-50`}
                                    disabled={busy}
                                    onClick={() => revoke(x.id)}
                                    aria-label={`Log out ${describeAgent(x.agent)}, logged in ${x.created ? when(x.created, now) : ''}`}
                                >
                                    Log out
                                </button>
                            )}
                        </li>
                    ))}
                </ul>
            )}
            <div className="mt-3">
                {!confirmAll ? (
                    <button className={`${btn} border border-red-200 text-red-700 hover:bg-red-50`} onClick={() => setConfirmAll(true)}>
                        Log out everywhere
                    </button>
                ) : (
                    <div className="flex flex-wrap items-center gap-2 rounded-md bg-red-50 px-3 py-2 text-sm text-red-900" role="group" aria-label="Confirm">
                        <span className="flex-1">Log out on every device, this one too?</span>
                        <button className={`${btn} bg-red-600 text-white hover:bg-red-700`} disabled={busy} onClick={all}>
                            Log out all
                        </button>
                        <button className={`${btn} text-slate-700 hover:bg-white`} onClick={() => setConfirmAll(false)}>
                            Cancel
                        </button>
                    </div>
                )}
            </div>
        </section>
    );
}

function Password({ api, conn, onChanged }) {
    const [old, setOld] = useState('');
    const [next, setNext] = useState('');
    const [again, setAgain] = useState('');
    const [error, setError] = useState('');
    const [done, setDone] = useState('');
    const [busy, setBusy] = useState(false);
    const submit = async (e) => {
        e.preventDefault();
        setDone('');
        const problem = !old ? 'Enter your current password.' : checkPassword(next) || (next !== again ? 'The new passwords do not match.' : '');
        if (problem) return setError(problem);
        setBusy(true);
        setError('');
        const r = await conn.renew(api.password(old, next));
        setBusy(false);
        if (!r.ok) return setError(r.error);
        setOld('');
        setNext('');
        setAgain('');
        setDone('Password changed. You are logged out on every other device.');
        onChanged();
    };
    return (
        <section aria-labelledby="password-title">
            <h3 id="password-title" className="mb-2 font-semibold text-slate-800">
                Change password
            </h3>
            <form onSubmit={submit} noValidate className="space-y-2" aria-label="Change password">
                <label className="block text-xs font-medium text-slate-600">
                    Current password
                    <input
                        type="password"
                        name="old-password"
                        autoComplete="current-password"
                        className={field}
                        value={old}
                        onChange={(e) => setOld(e.target.value)}
                    />
                </label>
                <label className="block text-xs font-medium text-slate-600">
                    New password (at least 8 characters)
                    <input
                        type="password"
                        name="new-password"
                        autoComplete="new-password"
                        className={field}
                        value={next}
                        onChange={(e) => setNext(e.target.value)}
                    />
                </label>
                <label className="block text-xs font-medium text-slate-600">
                    New password again
                    <input
                        type="password"
                        name="new-password-again"
                        autoComplete="new-password"
                        className={field}
                        value={again}
                        onChange={(e) => setAgain(e.target.value)}
                    />
                </label>
                {error && (
                    <p role="alert" data-testid="password-error" className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-700">
                        {error}
                    </p>
                )}
                {done && (
                    <p role="status" data-testid="password-done" className="rounded-md bg-emerald-50 px-3 py-2 text-sm text-emerald-800">
                        {done}
                    </p>
                )}
                <button type="submit" disabled={busy} className={`${btn} bg-indigo-600 text-white hover:bg-indigo-700 disabled:opacity-60`}>
                    {busy ? 'Please wait…' : 'Change password'}
                </button>
            </form>
        </section>
    );
}

function Blocked({ conn, blocked }) {
    const names = Object.keys(blocked).sort();
    return (
        <section aria-labelledby="blocked-title">
            <h3 id="blocked-title" className="mb-1 font-semibold text-slate-800">
                Blocked users
            </h3>
            <p className="mb-2 text-xs text-slate-500">They cannot message you, add you to groups or see when you are online.</p>
            {names.length === 0 ? (
                <p className="text-sm text-slate-500">Nobody.</p>
            ) : (
                <ul className="divide-y divide-slate-100 rounded-md border border-slate-200" aria-label="Blocked users">
                    {names.map((n) => (
                        <li key={n} className="flex items-center gap-3 px-3 py-2 text-sm" data-testid="blocked-user">
                            <span className="flex-1">{n}</span>
                            <button className={`${btn} text-indigo-700 hover:bg-indigo-50`} onClick={() => conn.block(n, false)} aria-label={`Unblock ${n}`}>
                                Unblock
                            </button>
                        </li>
                    ))}
                </ul>
            )}
        </section>
    );
}
