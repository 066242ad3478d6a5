// The migration sets are embedded at compile time (refinery's embed_migrations!): rebuild
// when a migration file is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=../../db/schema");
}
