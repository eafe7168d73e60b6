/* fleet/export.h — FLEET_API marks the functions libfleet exports.
 *
 * The library is built with -fvisibility=hidden: everything not marked here
 * stays inside it (scripts/house-rules.sh checks the shared library's
 * exported symbols). */
#ifndef FLEET_EXPORT_H
#define FLEET_EXPORT_H

#if defined(FLEET_BUILDING_LIBRARY) && defined(__GNUC__)
#define FLEET_API __attribute__((visibility("default")))
#else
#define FLEET_API
#endif

#endif /* FLEET_EXPORT_H */
