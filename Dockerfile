# syntax=docker/dockerfile:1
#
# One image for every role: `serve` (default: API + worker, SQLite in DATA_DIR), `api`, `worker`,
# `migrate`, and the operator commands (`accounts`, `keys`, `credits grant`).
#
#   docker build -t framegate .
#   docker run --rm -p 8787:8787 -v framegate-data:/var/lib/framegate framegate
#   docker run --rm --env-file prod.env framegate migrate
#
# Scale-out examples (compose, Kubernetes): deploy/README.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles with node-gyp when no prebuilt binary matches the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# Dependencies first, so this layer is cached until a manifest or the lockfile changes.
# --ignore-scripts: the root "prepare" script builds sources that are not copied yet; the
# packages' own install scripts (better-sqlite3, the ffmpeg binary) run in `npm rebuild` below.
COPY package.json package-lock.json ./
COPY packages/contract/package.json packages/contract/
COPY packages/server/package.json packages/server/
COPY packages/sdk/package.json packages/sdk/
COPY packages/cli/package.json packages/cli/
COPY packages/console/package.json packages/console/
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.base.json ./
COPY packages ./packages
# Build every package to dist/ (the runtime resolves the packages' "default" export, i.e. dist),
# drop the dev dependencies (`npm prune` runs no lifecycle scripts, so no rebuild without tsc),
# and remove what the runtime does not read.
RUN npm rebuild --no-audit --no-fund \
  && npm run build \
  && npm prune --omit=dev --no-audit --no-fund \
  && rm -rf packages/*/src packages/*/test packages/*/scripts packages/*/tsconfig*.json packages/*/*.tsbuildinfo \
  && npm cache clean --force

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
  HOST=0.0.0.0 \
  PORT=8787 \
  DATA_DIR=/var/lib/framegate
WORKDIR /app
# The code stays owned by root (read-only for the process); only DATA_DIR is writable. With
# PostgreSQL and S3 it holds just local work files (simulator renders, the reference image cache).
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
RUN mkdir -p /var/lib/framegate && chown node:node /var/lib/framegate
USER node
EXPOSE 8787
# No HEALTHCHECK here: what to probe depends on the role (API: PORT /readyz; worker: HEALTH_PORT;
# migrate exits). deploy/docker-compose.yml and deploy/kubernetes/ define them per role.
# node runs as PID 1 and handles SIGTERM itself (graceful shutdown, SHUTDOWN_GRACE_SECONDS).
ENTRYPOINT ["node", "packages/cli/bin/framegate.js"]
CMD ["serve"]
