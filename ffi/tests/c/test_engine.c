/* test_engine.c: the engine's configuration, start and stop, and its refusals of bad values. */
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void engine_config_defaults_are_sane(void) {
  octo_engine_config c;
  memset(&c, 0xff, sizeof c);
  CHECK_OK(octo_engine_config_default(&c));
  CHECK(c.shards == 0);
  CHECK(c.pin_shards);
  CHECK(c.cpus == NULL && c.cpus_len == 0);
  CHECK(c.ring_entries == 1024);
  CHECK(c.max_frame_size == 16u << 20);
  CHECK(c.max_connections_per_shard > 0);
  CHECK(c.max_in_flight_per_connection > 0);
  CHECK(c.idle_timeout_ms > 0);
  CHECK(c.write_low_water <= c.write_high_water);
  CHECK_STATUS(octo_engine_config_default(NULL), OCTO_STATUS_INVALID_ARGUMENT);
}

static void engine_starts_with_the_shards_asked_for(void) {
  octo_engine_config c;
  CHECK_OK(octo_engine_config_default(&c));
  c.shards = 2;
  uint32_t cpus[] = {0};
  c.cpus = cpus;
  c.cpus_len = 1;
  octo_engine *e = NULL;
  CHECK_OK(octo_engine_new(&c, &e));
  CHECK(octo_engine_shard_count(e) == 2);
  octo_engine_free(e);

  e = NULL;
  CHECK_OK(octo_engine_new(NULL, &e)); /* defaults: one shard per CPU */
  CHECK(octo_engine_shard_count(e) >= 1);
  octo_engine_free(e);
  CHECK(octo_engine_shard_count(NULL) == 0);
  octo_engine_free(NULL);
}

static void engine_refuses_bad_configurations(void) {
  octo_engine *e = NULL;
  octo_engine_config c;
  CHECK_STATUS(octo_engine_new(NULL, NULL), OCTO_STATUS_INVALID_ARGUMENT);

  CHECK_OK(octo_engine_config_default(&c));
  c.shards = OCTO_MAX_SHARDS + 1;
  CHECK_STATUS(octo_engine_new(&c, &e), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("shards");

  CHECK_OK(octo_engine_config_default(&c));
  c.ring_entries = 0;
  CHECK_STATUS(octo_engine_new(&c, &e), OCTO_STATUS_INVALID_ARGUMENT);

  CHECK_OK(octo_engine_config_default(&c));
  c.max_frame_size = 10;
  CHECK_STATUS(octo_engine_new(&c, &e), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("max_frame_size");

  CHECK_OK(octo_engine_config_default(&c));
  c.max_in_flight_per_connection = 0;
  CHECK_STATUS(octo_engine_new(&c, &e), OCTO_STATUS_INVALID_ARGUMENT);

  CHECK_OK(octo_engine_config_default(&c));
  c.write_low_water = c.write_high_water + 1;
  CHECK_STATUS(octo_engine_new(&c, &e), OCTO_STATUS_INVALID_ARGUMENT);

  CHECK_OK(octo_engine_config_default(&c));
  c.cpus = NULL;
  c.cpus_len = 3;
  CHECK_STATUS(octo_engine_new(&c, &e), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(e == NULL);
}

int main(void) {
  engine_config_defaults_are_sane();
  engine_starts_with_the_shards_asked_for();
  engine_refuses_bad_configurations();
  return check_done("test_engine");
}
