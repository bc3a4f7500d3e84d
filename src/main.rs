fn main() {
    std::process::exit(neurospec::cli::main());
}
