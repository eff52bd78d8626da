//! `fdfs-httpd`: see the library crate; this only hands over the command line.
fn main() -> std::process::ExitCode {
    fdfs_httpd::cli::main()
}
