// ESLint (flat config) for Parley's JavaScript: the web client (web/src,
// web/vite.config.js) and every JS test (tests/**/*.mjs). tests/lint/js.sh
// runs it from the repo root with --config, so the `files` patterns below are
// relative to the repo root and the plugins resolve from tests/lint/node_modules.
//
// ESLint's own recommended rules everywhere; eslint-plugin-react-hooks'
// recommended rules (hooks rules + the React Compiler's checks) on the
// client's components. ESLint 10 counts a JSX tag name as a use of its
// variable, so eslint-plugin-react (jsx-uses-vars) is not needed.
import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

export default [
    {
        ignores: ['**/node_modules/', 'web/dist/', 'build*/', 'tests/artifacts/'],
    },
    js.configs.recommended,
    {
        linterOptions: { reportUnusedDisableDirectives: 'error' },
    },
    // the web client: ES modules in the browser, JSX
    {
        files: ['web/src/**/*.{js,jsx}'],
        languageOptions: {
            ecmaVersion: 'latest',
            sourceType: 'module',
            parserOptions: { ecmaFeatures: { jsx: true } },
            globals: globals.browser,
        },
    },
    {
        files: ['web/src/**/*.jsx'],
        ...reactHooks.configs.flat.recommended,
    },
    // Node: vite's config, the tests, this file
    {
        files: ['web/vite.config.js', 'tests/**/*.mjs'],
        languageOptions: { ecmaVersion: 'latest', sourceType: 'module', globals: globals.node },
    },
    // the browser suite's page.evaluate / waitForFunction callbacks run in the page
    {
        files: ['tests/e2e/**/*.mjs'],
        languageOptions: { globals: { ...globals.node, ...globals.browser } },
    },
];
