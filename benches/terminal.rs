//! `cargo bench`: criterion statistics for the terminal's CPU-bound paths — the Entry Point and
//! kernel per tap (card answers pre-recorded from the phone wallet simulator), the ISO 8583 codec
//! and the TLV codec. Wall-clock figures with real I/O (acquirer throughput, journal writes,
//! reader stacks over pcscd) are in `shanfu bench` and bench/REPORT.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use shanfu::bench::{record_tap, replay_kernel, sample_0200};
use shanfu::settings::Settings;
use std::sync::Arc;

fn kernels(c: &mut Criterion) {
    let settings = Settings::load(None).expect("built-in configuration");
    let cfg = Arc::new(settings.ep.clone());
    let capks = Arc::new(settings.capks.clone());
    let mut g = c.benchmark_group("kernel CPU per tap");
    for (profile, amount) in [("unionpay-transit", "10.00"), ("unionpay-phone", "50.00"), ("visa-phone", "50.00")] {
        let (tap, rep, _) = record_tap(&settings, profile, amount).expect("record a tap");
        g.bench_function(format!("{profile} ({} {})", rep.outcome, rep.oda), |b| b.iter(|| replay_kernel(&cfg, &capks, black_box(&tap))));
    }
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let settings = Settings::load(None).expect("built-in configuration");
    let (_, _, record) = record_tap(&settings, "unionpay-phone", "50.00").expect("record a tap");
    let record = record.expect("an online tap has a data record");
    let msg = sample_0200(&record);
    let codec = iso8583::ascii87();
    let bytes = codec.pack(&msg).expect("pack");
    c.bench_function("iso8583 ascii87 pack+unpack 0200 with DE55", |b| {
        b.iter(|| {
            let p = codec.pack(black_box(&msg)).expect("pack");
            codec.unpack(&p).expect("unpack")
        })
    });
    c.bench_function("iso8583 ascii87 unpack 0200", |b| b.iter(|| codec.unpack(black_box(&bytes)).expect("unpack")));
    c.bench_function("tlv parse data record", |b| b.iter(|| kernels::tlv::parse_all(black_box(&record)).expect("tlv")));
}

criterion_group!(benches, kernels, codecs);
criterion_main!(benches);
