# One image for both processes:
#   API (default):  node dist/src/server.js
#   expiry worker:  node dist/workers/expiry-worker.js
#   operator CLI:   node dist/bin/checkoutctl.js <command>
# Configuration comes from the environment only (see src/config.ts).

# Build: every dependency, then TypeScript to dist/ plus the Lua scripts.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-lua.mjs scripts/
COPY src src
COPY workers workers
COPY bin bin
RUN npm run build

# Production dependencies only, installed apart so no dev tooling reaches the runtime image.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# In a container the API must listen on every interface to be reachable
# through a published port; the config default (127.0.0.1) suits a laptop.
ENV HOST=0.0.0.0
WORKDIR /app
# package.json is needed at run time: its "type": "module" makes dist/ ESM.
COPY package.json ./
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
# Files stay owned by root, so the process cannot change its own code.
USER node
# The API's port, and the worker's (/metrics, /healthz, /readyz).
EXPOSE 3000 9091
# Liveness of whichever process the container runs: the API answers /healthz
# on PORT, the worker on WORKER_HTTP_PORT; only one of them listens here, so
# the check passes when either answers 200. (A worker started with
# WORKER_HTTP_PORT=-1 serves nothing: give it HEALTHCHECK NONE.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const ok = (p) => fetch('http://127.0.0.1:' + p + '/healthz').then((r) => r.ok, () => false); Promise.all([ok(process.env.PORT || 3000), ok(process.env.WORKER_HTTP_PORT || 9091)]).then((r) => process.exit(r.includes(true) ? 0 : 1))"]
CMD ["node", "dist/src/server.js"]
