# Multi-stage image: build the single binary with Bun, run it on a slim Debian as a non-root user.
#   docker build -t voice-agent .
#   docker run -p 8080:8080 --env-file .env -v voice-agent-data:/var/lib/voice-agent voice-agent
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json bun.lock bunfig.toml tsconfig.json ./
RUN bun install --frozen-lockfile
COPY src ./src
COPY scripts/voice-agent.service ./scripts/voice-agent.service
RUN bun run build

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/voice-agent --create-home voice-agent
COPY --from=build /src/dist/voice-agent /usr/local/bin/voice-agent
ENV SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8080 \
    DATABASE_PATH=/var/lib/voice-agent/voice-agent.db
VOLUME ["/var/lib/voice-agent"]
WORKDIR /var/lib/voice-agent
USER voice-agent
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["voice-agent", "health"]
ENTRYPOINT ["voice-agent"]
