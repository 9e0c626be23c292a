/** The sizes of bronze's disk layout: an ESP, then /var. */
export const ESP_SIZE = 100 << 20;
export const MIN_DISK_SIZE = ESP_SIZE + (64 << 20);
/** 1 GiB: the ESP and room for /var */
export const DEFAULT_DISK_SIZE = 1 << 30;
