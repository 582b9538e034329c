//! Layer diff+compress and apply on a 1 GiB tree of 50,000 files, measured in the same run as the tools
//! they replace: `tar -c | pigz -p2`, `tar -c | zstd -T2 -3` and `tar -x`.
//!
//! The tree is generated once under `/tmp/strata-bench` (never in the repository, never by tests). Set
//! `STRATA_BENCH_MIB` and `STRATA_BENCH_FILES` for a smaller trial run. `bench/layer.sh` runs this and
//! writes the figures to `docs/benchmarks.md`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_snapshotter::{Compression, ContentStore, DiffOptions, LayerDescriptor, SnapshotLayout, apply, diff};

const SCRATCH: &str = "/tmp/strata-bench";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A tree like an image's: 100 files per directory, half text-like (compressible), half binary (not).
fn tree(total: u64, files: u64) -> PathBuf {
    let dir = Path::new(SCRATCH).join(format!("tree-{total}-{files}"));
    let done = dir.join(".complete");
    if done.exists() {
        return dir;
    }
    let _ = fs::remove_dir_all(&dir);
    const WORDS: &[&str] =
        &["layer", "image", "build", "cache", "strata", "overlay", "the", "of", "config", "\n", "0x1f"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let per_file = total / files;
    for i in 0..files {
        let sub = dir.join(format!("d{:04}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&sub).unwrap();
        }
        let size = (per_file / 2 + next() % per_file) as usize;
        let mut data = Vec::with_capacity(size + 16);
        if i % 2 == 0 {
            while data.len() < size {
                data.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize].as_bytes());
                data.push(b' ');
            }
        } else {
            while data.len() < size {
                data.extend_from_slice(&next().to_le_bytes());
            }
        }
        data.truncate(size);
        fs::File::create(sub.join(format!("f{i}"))).unwrap().write_all(&data).unwrap();
    }
    fs::write(&done, b"").unwrap();
    dir
}

fn shell(script: &str) {
    let status = Command::new("sh").arg("-c").arg(script).status().unwrap();
    assert!(status.success(), "{script} failed");
}

fn fresh_dir(path: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(path);
    fs::create_dir_all(path).unwrap();
    path.to_owned()
}

/// Times `iters` runs of `run`, calling `reset` untimed before each.
fn timed(iters: u64, mut reset: impl FnMut(), mut run: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        reset();
        let start = Instant::now();
        run();
        total += start.elapsed();
    }
    total
}

fn layers(c: &mut Criterion) {
    let total = env_or("STRATA_BENCH_MIB", 1024) << 20;
    let files = env_or("STRATA_BENCH_FILES", 50_000);
    let tree = tree(total, files);
    let tree_arg = tree.display().to_string();
    let out = Path::new(SCRATCH).join("out");
    let store_dir = Path::new(SCRATCH).join("store");
    let layout = SnapshotLayout::Full { dir: tree.clone(), parent: None };
    let make_layer = |compression: Compression| -> LayerDescriptor {
        let store = ContentStore::open(&store_dir).unwrap();
        diff(&layout, &store, &DiffOptions::new().compression(compression).threads(2)).unwrap()
    };
    // Untimed: the previous iteration's blob goes, so every diff writes a new one.
    let empty_store = || drop(fresh_dir(&store_dir));
    let diff_with = |compression| move |iters| timed(iters, empty_store, || drop(make_layer(compression)));

    let mut group = c.benchmark_group("layer");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).throughput(Throughput::Bytes(total));
    group.bench_function("diff/strata-gzip", |b| b.iter_custom(diff_with(Compression::Gzip)));
    group.bench_function("diff/tar-pigz-p2", |b| {
        b.iter(|| shell(&format!("tar -C {tree_arg} -cf - . | pigz -p2 > {SCRATCH}/tar.gz")))
    });
    group.bench_function("diff/strata-zstd", |b| b.iter_custom(diff_with(Compression::Zstd)));
    group.bench_function("diff/tar-zstd-T2", |b| {
        b.iter(|| shell(&format!("tar -C {tree_arg} -cf - . | zstd -q -T2 -3 -f -o {SCRATCH}/tar.zst")))
    });

    empty_store();
    let gzip = make_layer(Compression::Gzip);
    let blob = Path::new(SCRATCH).join("layer.tar.gz");
    fs::copy(store_dir.join("blobs/sha256").join(gzip.digest.hex()), &blob).unwrap();
    let zstd = make_layer(Compression::Zstd);
    for (name, size) in [
        ("strata-gzip", gzip.size),
        ("tar-pigz-p2", fs::metadata(format!("{SCRATCH}/tar.gz")).unwrap().len()),
        ("strata-zstd", zstd.size),
        ("tar-zstd-T2", fs::metadata(format!("{SCRATCH}/tar.zst")).unwrap().len()),
    ] {
        // Read by bench/layer.sh for the compressed-size column.
        println!("SIZE {name} {size}");
    }
    let empty_out = || drop(fresh_dir(&out));
    group.bench_function("apply/strata-gzip", |b| {
        b.iter_custom(|iters| {
            timed(iters, empty_out, || {
                let target = SnapshotLayout::Full { dir: out.clone(), parent: None };
                apply(fs::File::open(&blob).unwrap(), Some(&gzip.digest), &target).unwrap();
            })
        })
    });
    group.bench_function("apply/tar-xzf", |b| {
        b.iter_custom(|iters| {
            timed(iters, empty_out, || shell(&format!("tar -xzf {} -C {}", blob.display(), out.display())))
        })
    });
    group.finish();
    let _ = fs::remove_dir_all(&out);
}

criterion_group!(benches, layers);
criterion_main!(benches);
