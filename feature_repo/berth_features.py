"""Feast definitions for Berth's workload: ranking candidate drivers for a ride request.

Entities: ``driver`` (ids from 1001) and ``customer`` (ids from 1). Three batch feature views
come from parquet files that ``berth data`` (``berth.datagen``) writes under ``data/``; the
request-time features come from the ride request through a RequestSource and a pass-through
on-demand view. One FeatureService per model version is the model's input contract: its
feature order is the column order of the model's input tensor.
"""

from datetime import timedelta

from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Project,
    RequestSource,
    ValueType,
)
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float32, Float64, Int64

project = Project(name="berth", description="Driver ranking for ride requests")

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    value_type=ValueType.INT64,
    description="A driver; ids from 1001",
)
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A rider; ids from 1",
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="conv_rate", dtype=Float32, description="Offers converted, last hour"),
        Field(name="acc_rate", dtype=Float32, description="Offers accepted, last hour"),
        Field(name="avg_daily_trips", dtype=Int64, description="Trips a day, 7-day mean"),
        Field(name="trips_last_hour", dtype=Int64, description="Trips completed last hour"),
        Field(name="cancel_rate", dtype=Float32, description="Trips cancelled by driver"),
        Field(name="avg_pickup_eta_min", dtype=Float32, description="Mean pickup ETA"),
        Field(name="online_minutes_last_hour", dtype=Float32, description="Minutes online"),
    ],
    source=FileSource(
        name="driver_hourly_stats_source",
        path="data/driver_hourly_stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    ),
    online=True,
    tags={"team": "marketplace"},
)

driver_profile = FeatureView(
    name="driver_profile",
    entities=[driver],
    ttl=timedelta(days=90),
    schema=[
        Field(name="rating", dtype=Float32, description="Mean rider rating, 1-5"),
        Field(name="years_active", dtype=Float32, description="Years on the platform"),
        Field(name="vehicle_age_years", dtype=Float32, description="Age of the vehicle"),
        Field(name="total_trips", dtype=Int64, description="Lifetime trips"),
        Field(name="is_premium", dtype=Int64, description="1 for a premium vehicle"),
        Field(name="vehicle_capacity", dtype=Int64, description="Passenger seats"),
        Field(name="home_zone_km", dtype=Float32, description="Home zone to city centre"),
    ],
    source=FileSource(
        name="driver_profile_source",
        path="data/driver_profile.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    ),
    online=True,
    tags={"team": "supply"},
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=90),
    schema=[
        Field(name="cust_rating", dtype=Float32, description="Mean driver rating of rider"),
        Field(name="cust_lifetime_trips", dtype=Int64, description="Lifetime trips"),
        Field(name="cust_avg_tip_pct", dtype=Float32, description="Mean tip, percent"),
        Field(name="cust_cancel_rate", dtype=Float32, description="Rides cancelled by rider"),
        Field(name="cust_is_member", dtype=Int64, description="1 for a paid membership"),
        Field(name="cust_avg_trip_km", dtype=Float32, description="Mean trip length"),
    ],
    source=FileSource(
        name="customer_profile_source",
        path="data/customer_profile.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    ),
    online=True,
    tags={"team": "demand"},
)

ride_request = RequestSource(
    name="ride_request",
    schema=[
        Field(name="trip_distance_km", dtype=Float64),
        Field(name="pickup_hour", dtype=Int64),
    ],
)


@on_demand_feature_view(  # type: ignore[misc]
    sources=[ride_request],
    schema=[
        Field(name="trip_distance_km", dtype=Float64),
        Field(name="pickup_hour", dtype=Int64),
    ],
    mode="python",
    description="Request-time features of the ride, as sent (no transformation).",
)
def ride_context(inputs: dict) -> dict:  # type: ignore[type-arg]
    return {"trip_distance_km": inputs["trip_distance_km"], "pickup_hour": inputs["pickup_hour"]}


driver_ranking_v1 = FeatureService(
    name="driver_ranking_v1",
    features=[
        driver_hourly_stats[
            [
                "conv_rate",
                "acc_rate",
                "avg_daily_trips",
                "trips_last_hour",
                "cancel_rate",
                "avg_pickup_eta_min",
            ]
        ],
        driver_profile[
            [
                "rating",
                "years_active",
                "vehicle_age_years",
                "total_trips",
                "is_premium",
                "vehicle_capacity",
            ]
        ],
        customer_profile[
            [
                "cust_rating",
                "cust_lifetime_trips",
                "cust_avg_tip_pct",
                "cust_cancel_rate",
                "cust_is_member",
                "cust_avg_trip_km",
            ]
        ],
        ride_context,
    ],
    description="Input contract of driver-ranking v1 (20 features).",
)

driver_ranking_v2 = FeatureService(
    name="driver_ranking_v2",
    features=[driver_hourly_stats, driver_profile, customer_profile, ride_context],
    description="Input contract of driver-ranking v2 (all 22 features).",
)
