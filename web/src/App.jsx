// App: decides between the sign-in screen and the chat. A reload keeps the
// session: the gateway's parley_token cookie (HttpOnly) is checked with an
// authenticated GET /api/users; the user's name then comes from `hello`.
import { useCallback, useEffect, useState } from 'react';
import Auth from './components/Auth.jsx';
import Chat from './components/Chat.jsx';
import { createApi } from './lib/api.js';

const api = createApi();

export default function App() {
    // 'checking' | 'out' | 'in'
    const [auth, setAuth] = useState('checking');
    const [reason, setReason] = useState('');
    const [checkError, setCheckError] = useState('');

    // Is the cookie still good? On mount, and again from "Try again".
    const probe = useCallback(
        () =>
            api.users('').then((r) => {
                if (r.ok) setAuth('in');
                else if (r.status === 401) setAuth('out');
                else setCheckError(r.error);
            }),
        [],
    );
    const check = () => {
        setCheckError('');
        probe();
    };

    useEffect(() => {
        probe();
    }, [probe]);

    if (auth === 'checking') {
        return (
            <main className="flex h-full items-center justify-center p-6 text-slate-600">
                {checkError ? (
                    <div role="alert" className="text-center">
                        <p className="mb-3">{checkError}</p>
                        <button
                            className="rounded bg-indigo-600 px-4 py-2 text-white focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-700"
                            onClick={check}
                        >
                            Try again
                        </button>
                    </div>
                ) : (
                    <p>Loading…</p>
                )}
            </main>
        );
    }
    if (auth === 'out') {
        return (
            <Auth
                api={api}
                notice={reason}
                onSignedIn={() => {
                    setReason('');
                    setAuth('in');
                }}
            />
        );
    }
    return (
        <Chat
            api={api}
            onSignedOut={(why) => {
                setReason(why || '');
                setAuth('out');
            }}
        />
    );
}
