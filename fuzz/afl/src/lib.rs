//! AFL++ front end of shanfu's fuzz targets (`fuzz/src/lib.rs`): one small binary per target, so
//! each binary links — and AFL++ maps — only the code its target reaches (a single binary for
//! all eleven carried a 122 k-edge map that AFL++ scanned on every execution).

/// `main` for the target function `$f` of `shanfu_fuzz`, in AFL++ persistent mode.
#[macro_export]
macro_rules! target_main {
    ($f:ident) => {
        fn main() {
            afl::fuzz!(|data: &[u8]| shanfu_fuzz::$f(data));
        }
    };
}
