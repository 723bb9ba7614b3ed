fn main() {
    println!("worker-rust: ready on {}", std::env::consts::ARCH);
}
