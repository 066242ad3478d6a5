/// <reference types="vitest/config" />
// Vite builds the console into dist/ (served by `crm serve` at /); `npm run dev` proxies the
// API to a running `crm serve` (CRM_URL, default http://127.0.0.1:8000) so the dev server on
// http://acme.localhost:5173 works like the real origin.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

const api = process.env.CRM_URL ?? 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [vue()],
  server: {
    host: '127.0.0.1',
    allowedHosts: ['.localhost'],
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/openapi.json': { target: api },
    },
  },
  build: {
    target: 'es2022',
    // The budget is checked on the gzipped total (docs/PERFORMANCE.md); this only warns early.
    chunkSizeWarningLimit: 300,
  },
  test: {
    environment: 'happy-dom',
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
  },
})
