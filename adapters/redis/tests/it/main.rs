//! Integration tests of fctr-redis against a real Redis (`FCTR_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
fn main() {}
