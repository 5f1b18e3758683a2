// A tiny CommonJS loader for the template's own files, served by the service at /sandbox/miniprogram/<path>.
// Each file is fetched once; `instance()` gives a fresh module registry, so every "launch" of the sandbox app
// starts with fresh module state (like a new app process) while the storage stays.
(function () {
  'use strict';

  const BASE = '/sandbox/miniprogram/';
  const sources = new Map(); // 'utils/auth.js' → source text

  function resolve(from, request) {
    const parts = from.split('/').slice(0, -1);
    for (const seg of request.split('/')) {
      if (seg === '..') parts.pop();
      else if (seg !== '.' && seg !== '') parts.push(seg);
    }
    const path = parts.join('/');
    return path.endsWith('.js') ? path : `${path}.js`;
  }

  function requiresOf(src) {
    return [...src.matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
  }

  // Fetches `path` and, before anything runs, every file it requires (require must be synchronous).
  async function prefetch(path) {
    if (sources.has(path)) return;
    const res = await fetch(BASE + path, { cache: 'no-cache' });
    if (!res.ok) throw new Error(`cannot load ${BASE}${path}: HTTP ${res.status}`);
    const src = await res.text();
    sources.set(path, src);
    await Promise.all(requiresOf(src).map((r) => prefetch(resolve(path, r))));
  }

  function instance() {
    const cache = new Map();
    function load(path) {
      if (cache.has(path)) return cache.get(path).exports;
      const src = sources.get(path);
      if (src === undefined) throw new Error(`not prefetched: ${path}`);
      const module = { exports: {} };
      cache.set(path, module);
      // eslint-disable-next-line no-new-func
      const fn = new Function('module', 'exports', 'require', `${src}\n//# sourceURL=${BASE}${path}`);
      fn(module, module.exports, (request) => load(resolve(path, request)));
      return module.exports;
    }
    return { require: load };
  }

  window.MiniProgramLoader = { prefetch, instance, resolve };
})();
