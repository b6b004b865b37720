"""REST API of the market under /api/v1/market/ (names api-market-*)."""

from django.urls import path

from lowcarbon.market import api

urlpatterns = [
    path("market/book/", api.BookView.as_view(), name="api-market-book"),
    path("market/trades/", api.TradeListView.as_view(), name="api-market-trades"),
    path("market/prices/", api.PriceListView.as_view(), name="api-market-prices"),
    path("market/listings/", api.ListingCreateView.as_view(), name="api-market-listings"),
    path("market/buy-requests/", api.BuyRequestCreateView.as_view(), name="api-market-buy-requests"),
    path("market/orders/<str:number>/take/", api.TakeView.as_view(), name="api-market-take"),
    path("market/orders/<str:number>/accept/", api.AcceptView.as_view(), name="api-market-accept"),
    path("market/orders/<str:number>/cancel/", api.CancelView.as_view(), name="api-market-cancel"),
    path("market/auctions/", api.AuctionCreateView.as_view(), name="api-market-auctions"),
    path("market/auctions/<str:number>/", api.AuctionDetailView.as_view(), name="api-market-auction"),
    path("market/auctions/<str:number>/bids/", api.BidCreateView.as_view(), name="api-market-bids"),
    path("market/deals/", api.DealCreateView.as_view(), name="api-market-deals"),
    path(
        "market/deals/<str:number>/confirm/",
        api.DealActionView.as_view(action="confirm"),
        name="api-market-deal-confirm",
    ),
    path(
        "market/deals/<str:number>/decline/",
        api.DealActionView.as_view(action="decline"),
        name="api-market-deal-decline",
    ),
    path(
        "market/deals/<str:number>/cancel/",
        api.DealActionView.as_view(action="cancel"),
        name="api-market-deal-cancel",
    ),
]
