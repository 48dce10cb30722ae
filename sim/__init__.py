"""What a site has and a laptop lacks, simulated: plates (plate_render), road-camera
frames (scene), a synthetic camera publishing them (synthetic_camera), and local
Kafka/Redis test servers (local_services). Used by the demo, the tests and the
benchmarks; never by the flow."""
