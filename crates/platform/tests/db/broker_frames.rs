use platform::broker::{Broker, FRAME_MAX};
use secrecy::SecretString;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn negotiated_frame_max(url: &str) -> u32 {
    let broker = Broker::new(SecretString::from(url), "test_frames.");
    let connection = broker.connect().await.expect("RabbitMQ is running");
    let frame_max = connection.configuration().frame_max();
    connection.close(200, "done".into()).await.ok();
    frame_max
}

#[tokio::test]
async fn connections_ask_for_small_frames_so_their_buffers_stay_small() {
    assert_eq!(negotiated_frame_max(AMQP).await, FRAME_MAX);
}

#[tokio::test]
async fn a_frame_size_named_in_the_url_wins() {
    assert_eq!(
        negotiated_frame_max(&format!("{AMQP}?frame_max=65536")).await,
        65536
    );
}
