fn main() {
    // sqlx::migrate! embeds the migration files; rebuild when one is added or changed.
    println!("cargo:rerun-if-changed=migrations");
    // include_dir! does not tell cargo about the sandbox page's files; without this an edit there is not rebuilt.
    println!("cargo:rerun-if-changed=sandbox-ui");
    println!("cargo:rerun-if-changed=../../miniprogram/utils/auth.js");
    println!("cargo:rerun-if-changed=../../miniprogram/utils/session.js");
    println!("cargo:rerun-if-changed=../../miniprogram/config.js");
}
