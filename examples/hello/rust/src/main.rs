fn main() {
    println!("hello from rust on {}", std::env::consts::ARCH);
}
