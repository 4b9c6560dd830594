//! Every committed fuzz input, through its target (issue 13 §3): the corpora AFL++ grew and
//! minimized (`scripts/fuzz.sh`) and the inputs of every crash found, kept as regressions. A
//! target that panics on one fails here, in every test run, without AFL.

use std::path::Path;

#[test]
fn every_committed_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut ran = 0;
    for (name, f) in shanfu_fuzz::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().map(|e| e.path()).collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "target {name} has no committed corpus in {}", dir.display());
        for p in inputs {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            if let Err(e) = std::panic::catch_unwind(|| f(&data)) {
                let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                panic!("{name}: {} fails: {why}", p.display());
            }
            ran += 1;
        }
    }
    assert!(ran >= shanfu_fuzz::TARGETS.len());
}

/// Every target is found by its name (the AFL binary's argument), and only those.
#[test]
fn targets_are_found_by_name() {
    for (name, _) in shanfu_fuzz::TARGETS {
        assert!(shanfu_fuzz::target(name).is_some(), "{name}");
    }
    assert!(shanfu_fuzz::target("nope").is_none());
}

/// The kernel targets stop a card that keeps the terminal talking: a bound, not a hang.
#[test]
fn a_card_answering_for_ever_ends_or_is_caught_by_the_bound() {
    let answers: Vec<Vec<u8>> = (0..100).map(|_| vec![0x61, 0x10]).collect();
    let mut input = vec![0u8];
    input.extend(shanfu_fuzz::join_chunks(answers.iter().map(Vec::as_slice)));
    // 61 xx is no answer the Entry Point takes: it ends the tap well before the bound.
    shanfu_fuzz::kernel_c7(&input);
    shanfu_fuzz::kernel_c3(&input);
}
