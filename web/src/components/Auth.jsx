// Auth: log in or create an account. Checks names and passwords as the
// server will (names.js) before asking it, and shows the server's refusal in
// words (api.js).
import { useEffect, useState } from 'react';
import { checkPassword, checkUserName } from '../lib/names.js';

export default function Auth({ api, onSignedIn, notice }) {
    const [mode, setMode] = useState('login'); // 'login' | 'register'
    const [username, setUsername] = useState('');
    const [password, setPassword] = useState('');
    const [error, setError] = useState('');
    const [busy, setBusy] = useState(false);
    useEffect(() => {
        document.title = 'Parley';
    }, []);

    const submit = async (e) => {
        e.preventDefault();
        const name = username.trim();
        const problem = checkUserName(name) || (mode === 'register' || !password ? checkPassword(password) : '');
        if (problem) {
            setError(problem);
            return;
        }
        setBusy(true);
        setError('');
        const r = mode === 'login' ? await api.login(name, password) : await api.register(name, password);
        setBusy(false);
        if (r.ok) onSignedIn(name);
        else setError(r.error);
    };

    const field =
        'mt-1 block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-slate-900 shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500';
    return (
        <main className="flex min-h-full items-center justify-center p-4">
            <div className="w-full max-w-sm rounded-2xl bg-white p-6 shadow-lg sm:p-8">
                <div className="mb-6 flex items-center gap-3">
                    <img src="/favicon.svg" alt="" className="h-10 w-10" />
                    <div>
                        <h1 className="text-2xl font-semibold text-slate-900">Parley</h1>
                        <p className="text-sm text-slate-500">{mode === 'login' ? 'Log in to chat' : 'Create your account'}</p>
                    </div>
                </div>
                {notice && (
                    <p role="status" data-testid="auth-notice" className="mb-4 rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-800">
                        {notice}
                    </p>
                )}
                <form onSubmit={submit} noValidate aria-label={mode === 'login' ? 'Log in' : 'Register'}>
                    <label className="block text-sm font-medium text-slate-700">
                        User name
                        <input
                            name="username"
                            autoComplete="username"
                            autoCapitalize="none"
                            spellCheck="false"
                            autoFocus
                            className={field}
                            value={username}
                            onChange={(e) => setUsername(e.target.value.toLowerCase())}
                        />
                    </label>
                    <label className="mt-4 block text-sm font-medium text-slate-700">
                        Password
                        <input
                            name="password"
                            type="password"
                            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
                            className={field}
                            value={password}
                            onChange={(e) => setPassword(e.target.value)}
                        />
                    </label>
                    {mode === 'register' && <p className="mt-1 text-xs text-slate-500">At least 8 characters.</p>}
                    {error && (
                        <p role="alert" data-testid="auth-error" className="mt-4 rounded-md bg-red-50 px-3 py-2 text-sm text-red-700">
                            {error}
                        </p>
                    )}
                    <button
                        type="submit"
                        disabled={busy}
                        className="mt-6 w-full rounded-md bg-indigo-600 px-4 py-2 font-medium text-white hover:bg-indigo-700 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-700 disabled:opacity-60"
                    >
                        {busy ? 'Please wait…' : mode === 'login' ? 'Log in' : 'Create account'}
                    </button>
                </form>
                <p className="mt-4 text-center text-sm text-slate-600">
                    {mode === 'login' ? 'New here?' : 'Have an account?'}{' '}
                    <button
                        type="button"
                        className="font-medium text-indigo-600 underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-indigo-600"
                        onClick={() => {
                            setMode(mode === 'login' ? 'register' : 'login');
                            setError('');
                        }}
                    >
                        {mode === 'login' ? 'Create an account' : 'Log in instead'}
                    </button>
                </p>
            </div>
        </main>
    );
}
