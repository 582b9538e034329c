//! `strata-init`: the container init for the runtime's own tests and benches, the same code as `strata __init`.

fn main() {
    strata_runtime::run_init_if_requested();
    eprintln!("strata-init is started by strata's runtime as `strata-init {}`, not by hand", strata_runtime::INIT_ARG);
    std::process::exit(2);
}
