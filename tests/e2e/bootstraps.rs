//! Every Lambda starts the one way: each `functions/<name>/src/main.rs` is,
//! past its doc comment, exactly the one `gatehouse::lambda::run` call for
//! its own function (logging, metrics, the deadline and routing are
//! `gatehouse::lambda`'s, which `tests/metrics.rs` checks for every
//! function), and `functions/` holds a crate for every function and no
//! other.

use std::collections::BTreeSet;

use gatehouse::api::Function;
use gatehouse_e2e::repo_path;

/// What a function's `main.rs` holds besides its `//!` lines.
fn expected_main(function: Function) -> String {
    format!(
        "use gatehouse::api::Function;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {{
    gatehouse::lambda::run(const {{ Function::{function:?}.lambda() }}).await
}}
"
    )
}

#[test]
fn every_main_is_the_one_run_call_of_its_own_function() {
    let crates: BTreeSet<String> = std::fs::read_dir(repo_path("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        crates,
        Function::ALL.iter().map(|f| f.name().to_owned()).collect(),
        "one crate under functions/ per function"
    );
    for function in Function::ALL {
        let path = repo_path(&format!("functions/{}/src/main.rs", function.name()));
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .lines()
            .filter(|line| !line.starts_with("//!"))
            .skip_while(|line| line.is_empty())
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(
            code,
            expected_main(function),
            "{} is not the one run call",
            path.display()
        );
    }
}
