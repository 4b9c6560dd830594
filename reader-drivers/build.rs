//! Link flags for the libnfc backend.
//!
//! `nfc1-sys` builds libnfc as a static library; with its `pcsc` driver that library calls
//! pcsc-lite (`SCardConnect`, ...) but `nfc1-sys` does not link pcsc-lite itself. The crate that
//! uses it has to: link `libpcsclite` here whenever the `libnfc` feature is on. (The `pcsc`
//! crate links it too, but only its own symbols keep it in an `--as-needed` link.)

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PCSC_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PCSC_LIB_NAME");
    if std::env::var_os("CARGO_FEATURE_LIBNFC").is_none() {
        return;
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    match os.as_str() {
        // Windows: winscard; macOS: the PCSC framework — both linked by pcsc-sys already.
        "windows" | "macos" => {}
        _ => {
            if let Ok(dir) = std::env::var("PCSC_LIB_DIR") {
                println!("cargo:rustc-link-search=native={dir}");
            }
            let name = std::env::var("PCSC_LIB_NAME").unwrap_or_else(|_| "pcsclite".to_string());
            println!("cargo:rustc-link-lib=dylib={name}");
        }
    }
}
