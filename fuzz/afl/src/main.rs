//! `shanfu-afl TARGET`: runs one target of `shanfu_fuzz::TARGETS` under AFL++ (persistent mode).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(f) = shanfu_fuzz::target(&name) else {
        let names: Vec<&str> = shanfu_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: shanfu-afl TARGET   (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| f(data));
}
