//! Parses a generated 2,000-line multi-stage Dockerfile and types every instruction, then parses and lowers it
//! (the default target reaches all 100 stages).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_frontend::instructions::parse_instruction;
use strata_frontend::lower::{LowerOptions, Unresolved, lower};
use strata_frontend::parser::parse;

/// One stage of a realistic Dockerfile: 40 physical lines.
fn stage(index: usize) -> String {
    // Each final stage builds on the previous one, so the last stage needs every stage of the file.
    let previous = if index == 0 { "scratch".to_owned() } else { format!("final{}", index - 1) };
    format!(
        r#"# stage {index}
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build{index}
ARG VERSION=1.{index}.0 TARGETOS TARGETARCH
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath -mod=readonly" \
    PATH=/usr/local/go/bin:$PATH
LABEL org.opencontainers.image.version="${{VERSION}}" maintainer="dev{index}@example.com"
WORKDIR /src/app{index}
COPY --link go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod,sharing=locked \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download && \
    go mod verify
COPY --chown=1000:1000 --chmod=0644 --exclude=*.md . .
RUN --mount=type=secret,id=netrc,target=/root/.netrc \
    --network=none \
    GOOS=${{TARGETOS}} GOARCH=${{TARGETARCH}} \
    go build -ldflags "-X main.version=${{VERSION}}" -o /out/app{index} ./cmd/app
RUN <<EOF
set -eux
apk add --no-cache ca-certificates tzdata
adduser -D -u 1000 app
EOF
COPY <<-CONF /etc/app{index}.conf
	listen = ":80{index}"
	log_level = "info"
	CONF
FROM {previous} AS final{index}
COPY --from=build{index} /out/app{index} /usr/local/bin/app
COPY --from=build{index} /etc/app{index}.conf /etc/
EXPOSE 80/tcp 443/tcp
VOLUME ["/data"]
USER 1000:1000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["/usr/local/bin/app", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve", "--port", "80{index}"]
ONBUILD RUN echo "built from stage {index}"

"#
    )
}

/// Fifty stages: exactly 2,000 lines.
fn dockerfile() -> String {
    let text: String = (0..50).map(stage).collect();
    assert_eq!(text.lines().count(), 2_000);
    text
}

fn bench_parse(c: &mut Criterion) {
    let source = dockerfile();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(source.len() as u64));
    group.bench_function("parse+parse_instruction 2000 lines", |b| {
        b.iter(|| {
            let ast = parse(&source, "Dockerfile").expect("the generated Dockerfile is valid");
            for node in &ast.nodes {
                parse_instruction(node).expect("every generated instruction is valid");
            }
            ast
        })
    });
    let options = LowerOptions::new();
    group.bench_function("parse+lower 2000 lines, 100 stages", |b| {
        b.iter(|| {
            let ast = parse(&source, "Dockerfile").expect("the generated Dockerfile is valid");
            let definition = lower(&ast, &options, &Unresolved).expect("the generated Dockerfile lowers");
            assert!(definition.graph.len() > 500);
            definition
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
