// Banner: the connection's state, shown only when it is not plainly online:
// connecting, lost (with the countdown to the next attempt and a button to
// try at once), catching up after a reconnect (sync).
import { useEffect, useState } from 'react';

export default function Banner({ conn, syncing, onRetry }) {
    const [now, setNow] = useState(() => Date.now());
    useEffect(() => {
        if (conn.status !== 'offline') return;
        const t = setInterval(() => setNow(Date.now()), 500);
        return () => clearInterval(t);
    }, [conn.status]);

    let text = '';
    let tone = 'bg-amber-100 text-amber-900';
    if (conn.status === 'connecting') text = 'Connecting…';
    else if (conn.status === 'reconnecting') text = 'Reconnecting…';
    else if (conn.status === 'offline') {
        const s = Math.max(0, Math.ceil((conn.retryAt - now) / 1000));
        text = `Connection lost. Reconnecting${s > 0 ? ` in ${s} s` : '…'}`;
        tone = 'bg-red-100 text-red-900';
    } else if (syncing) text = 'Catching up on missed messages…';
    const show = !!text;
    return (
        <div role="status" aria-live="polite" data-testid="conn-banner" data-state={conn.status}>
            {show && (
                <div className={`flex items-center justify-center gap-3 px-4 py-2 text-sm ${tone}`}>
                    <span>{text}</span>
                    {conn.status === 'offline' && (
                        <button
                            onClick={onRetry}
                            className="rounded border border-current px-2 py-0.5 text-xs font-medium focus-visible:outline-2 focus-visible:outline-offset-2"
                        >
                            Reconnect now
                        </button>
                    )}
                </div>
            )}
        </div>
    );
}
