use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = wxlogin::cli::Cli::parse();
    match wxlogin::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("wxlogin: {}", failure.message);
            std::process::ExitCode::from(failure.exit_code)
        }
    }
}
