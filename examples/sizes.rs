fn main() {
    use breakerd::breaker::*;
    println!("OpenError {}", std::mem::size_of::<OpenError>());
    println!("TimeoutError {}", std::mem::size_of::<TimeoutError>());
    println!(
        "Result {}",
        std::mem::size_of::<Result<u64, BreakerError<std::io::Error>>>()
    );
    let b = Breaker::builder("x").build().unwrap();
    let f = b.call(|| async { Ok::<u64, std::io::Error>(1) });
    println!("future {}", std::mem::size_of_val(&f));
    println!(
        "tokio Instant {} Option {}",
        std::mem::size_of::<tokio::time::Instant>(),
        std::mem::size_of::<Option<tokio::time::Instant>>()
    );
}
