//! One binary: the PE's init when it runs as PID 1, the command-line tool otherwise.

fn main() {
    if std::process::id() == 1 {
        inplace::boot::init::run();
    }
    std::process::exit(inplace::cli::run());
}
