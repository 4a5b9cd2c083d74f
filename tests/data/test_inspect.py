"""Recognising the event fields from a file's column names."""

from shopformer.data.inspect import guess_columns, resolve_event_mapping


def test_online_retail_style_names():
    guesses = guess_columns(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"])
    assert guesses == {
        "user_col": "CustomerID", "item_col": "StockCode", "time_col": "InvoiceDate",
        "session_col": "InvoiceNo", "quantity_col": "Quantity", "value_col": "UnitPrice",
    }


def test_a_date_column_is_not_taken_for_the_event_type():
    guesses = guess_columns(["session_id", "user_id", "item_id", "timeframe", "eventdate"])
    assert guesses["time_col"] == "eventdate"
    assert "event_col" not in guesses


def test_stated_columns_win_and_are_not_reused():
    mapping = resolve_event_mapping(["visitor", "user_id", "item_id", "ts", "kind"], {"user_col": "visitor", "event_col": "kind"})
    assert mapping.user_col == "visitor" and mapping.event_col == "kind"
    assert mapping.time_col == "ts"


def test_sessions_stand_in_for_missing_users_and_no_event_column_means_views():
    mapping = resolve_event_mapping(["SessionId", "ItemId", "Time"], {})
    assert mapping.user_col == "SessionId" and mapping.session_col == "SessionId"
    assert mapping.event_col is None and mapping.default_event == "view"
