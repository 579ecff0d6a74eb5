# The release image: the binaries GoReleaser built (.goreleaser.yaml, dockers_v2), one per
# platform, on distroless as a non-root user. The Dockerfile at the root builds the same
# image from source.
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/xvmbot /usr/local/bin/xvmbot
WORKDIR /var/lib/xvmbot
USER 65532:65532
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=10s --retries=3 CMD ["/usr/local/bin/xvmbot", "health"]
ENTRYPOINT ["/usr/local/bin/xvmbot"]
CMD ["serve", "--config", "/etc/xvmbot/xvmbot.yaml"]
