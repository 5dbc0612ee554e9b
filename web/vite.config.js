// Vite: React (JSX) + Tailwind 4. `npm run dev` proxies the API and /ws to a
// gateway (PARLEY_GATEWAY, default http://127.0.0.1:8080), so the dev server
// and a built page behave the same.
import tailwindcss from '@tailwindcss/vite';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const gateway = process.env.PARLEY_GATEWAY || 'http://127.0.0.1:8080';

export default defineConfig({
    plugins: [react(), tailwindcss()],
    build: { outDir: 'dist', assetsInlineLimit: 0, sourcemap: false },
    server: {
        proxy: {
            '/api': gateway,
            '/ws': { target: gateway.replace(/^http/, 'ws'), ws: true },
        },
    },
});
