fn main() {
    println!("crm: all-in-one binary (work in progress)");
}
