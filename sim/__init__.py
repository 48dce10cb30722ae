"""What a site has and a laptop lacks, simulated: camera scenes and plates (plate_render),
a synthetic camera publishing them (synthetic_camera), and local Kafka/Redis test servers
(local_services). Used by the demo, the tests and the benchmarks; never by the flow."""
